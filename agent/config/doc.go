// Package config is Sentinel's one configuration tree: the YAML schema, strict decoding (an
// unknown key or a wrong type is an error naming its line), defaults, and validation whose
// messages name the key, its line and the offending value.
//
// Keys named by an issue as a contract are relied on outside the code: add keys, never rename
// them.
package config
