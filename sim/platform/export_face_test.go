package platform

// Missing is missing, for the external tests.
var Missing = missing
