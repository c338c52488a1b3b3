// Command sentinel is the edge agent of an electronic-sentinel terminal: it reads
// credentials, asks the city's platform, decides locally, drives the barrier, and records every
// passage durably before pushing it upstream.
//
// Exit codes: 0 success; 1 runtime failure (a part could not start or failed); 2 usage error
// or invalid config.
package main
