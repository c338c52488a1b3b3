// Package platform is the reference verification platform of
// docs/docking-spec.md: an http.Handler that answers the ping, QR and ID-card
// endpoints from a population.Population, with the spec's JSON envelope and
// status codes, plus knobs (a fault hook, a delay) to exercise a unit's error
// and offline paths.
//
// Use it directly with httptest:
//
//	srv := httptest.NewServer(platform.NewServer(pop, platform.Options{}))
//
// or run it with Server.Serve, as `sentinel-sim api` does.
package platform
