package verify

// Reason codes carried by every decision. They are a contract: documented in
// docs/reasons.md, relied on by the platform and by dashboards. Add codes; never rename them.
const (
	ReasonOK                  = "ok"                      // every rule of the policy passed
	ReasonHealthCodeYellow    = "health_code_yellow"      // health code is yellow and the venue does not allow it
	ReasonHealthCodeRed       = "health_code_red"         // health code is red and the venue does not allow it
	ReasonHealthCodeGreen     = "health_code_green"       // health code is green and the venue does not allow it
	ReasonHealthCodeUnknown   = "health_code_unknown"     // the platform gave no colour or one we do not know
	ReasonNATMissing          = "nat_missing"             // no nucleic-acid test on record
	ReasonNATPositive         = "nat_positive"            // the latest test is positive
	ReasonNATExpired          = "nat_expired"             // the test was sampled longer ago than policy.nat_max_age
	ReasonNATUnknown          = "nat_unknown"             // the test result is neither negative nor positive
	ReasonNATTimeInvalid      = "nat_time_invalid"        // the sampling time lies in the future by more than the clock skew allowed
	ReasonIdentityMismatch    = "identity_mismatch"       // the platform says the name does not match the ID number, or answered about another person than the card's
	ReasonUnknownCredential   = "unknown_credential"      // the platform does not know the token or ID number
	ReasonMalformedScan       = "malformed_scan"          // the scan is not a well-formed credential; the platform was not asked
	ReasonPlatformUnreachable = "platform_unreachable"    // no answer within platform.timeout; the offline policy denied
	ReasonPlatformError       = "platform_error"          // the platform answered with an error status
	ReasonBadResponse         = "bad_response"            // the answer was not JSON or lacked required fields
	ReasonInvalidIDNumber     = "invalid_id_number"       // the ID number fails the format or GB 11643 check digit; the platform was not asked
	ReasonCredentialRefused   = "credential_not_accepted" // policy.credentials does not list this kind; the platform was not asked
	ReasonVaccineInsufficient = "vaccine_insufficient"    // fewer vaccine doses on record than policy.min_vaccine_doses
	ReasonSignatureRejected   = "signature_rejected"      // the platform refused the request's signature or saw a replay
	ReasonOfflineCached       = "offline_cached"          // offline; allow_cached found a pass of the same person within platform.cache_ttl
	ReasonOfflineNotCached    = "offline_not_cached"      // offline; allow_cached found no pass of the same person within platform.cache_ttl
	ReasonOfflineFlagged      = "offline_flagged"         // offline; allow_and_flag let the person in, flagged for re-verification
	ReasonNATTimeUnverifiable = "nat_time_unverifiable"   // the unit's clock is wrong and the platform gave no time to measure the test's age against
	ReasonFaceUnavailable     = "face_unavailable"        // the face is required (camera.verify: required) and no snapshot could be taken; the platform was not asked
	ReasonFaceNotFound        = "face_not_found"          // a face search (face-only passage) found nobody in the population
	ReasonFaceLowScore        = "face_low_score"          // a face search's best match scored below policy.face_min_score
)

// Reasons lists every reason code with its plain description, for docs and the CLI.
var Reasons = []struct{ Code, Meaning string }{
	{ReasonOK, "every rule of the venue policy passed"},
	{ReasonHealthCodeGreen, "health code is green, which this venue's policy does not allow"},
	{ReasonHealthCodeYellow, "health code is yellow, which this venue's policy does not allow"},
	{ReasonHealthCodeRed, "health code is red, which this venue's policy does not allow"},
	{ReasonHealthCodeUnknown, "the platform gave no health-code colour, or one Sentinel does not know"},
	{ReasonNATMissing, "no nucleic-acid test on record, or no sampling time"},
	{ReasonNATPositive, "the latest nucleic-acid test is positive"},
	{ReasonNATExpired, "the nucleic-acid test was sampled longer ago than policy.nat_max_age"},
	{ReasonNATUnknown, "the nucleic-acid result is neither negative nor positive"},
	{ReasonNATTimeInvalid, "the sampling time lies in the future beyond the allowed clock skew"},
	{ReasonIdentityMismatch, "the platform says the name does not match the ID number, or its answer is about another person than the ID card read (or the card a face was verified with)"},
	{ReasonUnknownCredential, "the platform does not know this QR token or ID number"},
	{ReasonMalformedScan, "the scan is not a well-formed credential; the platform was not asked"},
	{ReasonPlatformUnreachable, "the platform did not answer within platform.timeout and the offline policy denies"},
	{ReasonPlatformError, "the platform answered with an error status"},
	{ReasonBadResponse, "the platform's answer was not JSON, lacked required fields, had a field of the wrong type or a code the mapping does not know"},
	{ReasonInvalidIDNumber, "the ID number fails the format or GB 11643 check-digit check; the platform was not asked"},
	{ReasonCredentialRefused, "this unit's policy does not accept this kind of credential (policy.credentials); the platform was not asked"},
	{ReasonVaccineInsufficient, "fewer vaccine doses on record than policy.min_vaccine_doses"},
	{ReasonSignatureRejected, "the platform refused the request's signature, or saw it as a replay"},
	{ReasonOfflineCached, "offline: allow_cached found an online pass of the same person at this unit within platform.cache_ttl"},
	{ReasonOfflineNotCached, "offline: allow_cached found no online pass of the same person at this unit within platform.cache_ttl"},
	{ReasonOfflineFlagged, "offline: allow_and_flag admitted the person; the record is flagged and re-verified when the platform returns"},
	{ReasonNATTimeUnverifiable, "the unit's clock is wrong (before 2024) and the platform's answer carried no time to measure the nucleic-acid test's age against"},
	{ReasonFaceUnavailable, "the face is required (camera.verify: required) and the camera gave no snapshot; the platform was not asked"},
	{ReasonFaceNotFound, "a face-only passage: the platform's face search found nobody in its population"},
	{ReasonFaceLowScore, "a face-only passage: the face search's best match scored below policy.face_min_score"},
}
