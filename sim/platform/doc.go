// Package platform is the reference verification platform of
// docs/docking-spec.md: an http.Handler that answers the ping, QR, ID-card and
// face endpoints from a population.Population, with the spec's JSON envelope
// and status codes, plus knobs (faults, a delay) to exercise a unit's error
// and offline paths. Besides the reference interface it speaks other
// dialects: a provincial gateway and one per signing scheme of the spec's
// "Signing" section (dialect_vendor.go), each checking signatures with its
// own code, for one or several app keys.
//
// Use it directly with httptest:
//
//	srv := httptest.NewServer(platform.NewServer(pop, platform.Options{}))
//
// or run it with Server.Serve, as `sentinel-sim api` does.
package platform
