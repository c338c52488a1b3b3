package verify

import "time"

// Credential kinds, as records name them.
const (
	KindQR     = "qr"
	KindIDCard = "idcard"
	KindFace   = "face"
)

// FaceSearch is the platform interface (and the audit's interface) of a face credential
// without an ID number: the 1:N search of docking interface v3, which names the person.
const FaceSearch = "face_search"

// Credential is what a reader produced for one passage. It holds personal data: never log it;
// use privacy's masks.
type Credential struct {
	Kind     string // KindQR, KindIDCard or KindFace
	QRToken  string
	IDNumber string // for KindIDCard, and for KindFace when the reader knows it
	Name     string
	FaceJPEG []byte // for KindFace
}

// Identity is who the platform says the person is.
type Identity struct {
	IDNumber string
	Name     string
	Match    bool
}

// NAT is the latest nucleic-acid test on record.
type NAT struct {
	Result     string // negative | positive
	SampledAt  time.Time
	ReportedAt time.Time
}

// Vaccine is the vaccination record.
type Vaccine struct {
	Doses    int
	LastDate string
}

// Result is the platform's answer about one credential.
type Result struct {
	RequestID  string
	Identity   Identity
	HealthCode string
	NAT        *NAT
	Vaccine    *Vaccine
	// ServerTime is the platform's clock when it answered: the answer's own time field when
	// the mapping names one (response.server_time), else its HTTP Date header; zero when it
	// gave neither. The verifier measures the nucleic-acid age against it when the unit's
	// clock is not trusted.
	ServerTime time.Time
	// Score is a face search's match score (0 to 1, higher is more alike); nil for other
	// answers, and for a face-search answer without one (which is a bad response).
	Score *float64
}
