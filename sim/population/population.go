package population

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// HealthCode is the colour of a person's health code.
type HealthCode string

// The health-code colours of docs/docking-spec.md.
const (
	Green  HealthCode = "green"
	Yellow HealthCode = "yellow"
	Red    HealthCode = "red"
)

// NATResult is the result of a nucleic-acid test.
type NATResult string

// The nucleic-acid test results. NoNAT means no test on record.
const (
	NoNAT    NATResult = ""
	Negative NATResult = "negative"
	Positive NATResult = "positive"
)

// Header is the exact header line of a population CSV. HeaderWithFace adds the optional
// face_image column (a path to the person's enrolled photo, relative to the CSV's folder).
var (
	Header         = []string{"id_number", "name", "health_code", "nat_result", "nat_sampled_at", "vaccine_doses", "qr_token"}
	HeaderWithFace = append(append([]string(nil), Header...), "face_image")
)

// Column indexes into a record, in Header order.
const (
	colID = iota
	colName
	colHealthCode
	colNATResult
	colNATSampledAt
	colVaccineDoses
	colQRToken
	numColumns
	colFaceImage = numColumns // the optional last column
)

// Errors a parse may wrap in a *ParseError.
var (
	ErrBadHeader      = errors.New("population: bad header")
	ErrBadCSV         = errors.New("population: malformed CSV")
	ErrBadColour      = errors.New("population: bad health code colour")
	ErrBadNATResult   = errors.New("population: bad nat_result")
	ErrBadTime        = errors.New("population: bad RFC 3339 time")
	ErrBadNumber      = errors.New("population: bad number")
	ErrMissing        = errors.New("population: missing value")
	ErrDuplicateToken = errors.New("population: duplicate qr_token")
	ErrDuplicateID    = errors.New("population: duplicate id_number")
	ErrEmpty          = errors.New("population: no people")
)

// Person is one row of the population.
type Person struct {
	IDNumber   string
	Name       string
	HealthCode HealthCode
	// NATResult is NoNAT when the person has no test on record; NATSampledAt
	// is then the zero time.
	NATResult    NATResult
	NATSampledAt time.Time
	// VaccineDoses is 0 when none are on record.
	VaccineDoses int
	// QRToken is empty when the person has no health-code token.
	QRToken string
	// FaceImage is the path of the person's enrolled photo (face search), empty when none.
	// Load makes a relative path relative to the CSV's folder.
	FaceImage string
}

// LogValue masks the personal data, so a Person passed to slog never leaks it.
func (p Person) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id_number", Mask(p.IDNumber)),
		slog.String("name", Mask(p.Name)),
		slog.String("health_code", string(p.HealthCode)),
		slog.String("qr_token", Mask(p.QRToken)),
	)
}

// String masks the personal data like LogValue.
func (p Person) String() string {
	return fmt.Sprintf("person{id:%s name:%s code:%s token:%s}", Mask(p.IDNumber), Mask(p.Name), p.HealthCode, Mask(p.QRToken))
}

// ParseError locates a problem in a population file. Its message names the
// file, line, column and the problem, never the offending personal data.
type ParseError struct {
	File   string // file name as given to Parse
	Line   int    // 1-based line
	Column int    // 1-based column (field number), 0 when the whole line is at fault
	Field  string // column name from Header, "" when unknown
	Detail string // extra words, free of personal data
	Err    error  // one of the Err* sentinels
}

func (e *ParseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "population: %s:%d", e.File, e.Line)
	if e.Column > 0 {
		fmt.Fprintf(&b, ": column %d", e.Column)
		if e.Field != "" {
			fmt.Fprintf(&b, " (%s)", e.Field)
		}
	}
	fmt.Fprintf(&b, ": %s", strings.TrimPrefix(e.Err.Error(), "population: "))
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// Population is an immutable set of people indexed by QR token and ID number.
// It is safe for concurrent use.
type Population struct {
	people  []Person
	byToken map[string]int
	byID    map[string]int
}

// New indexes people. Duplicate tokens or ID numbers are an error; the error
// gives the positions of the rows (0-based) rather than the values.
func New(people []Person) (*Population, error) {
	p := &Population{
		people:  append([]Person(nil), people...),
		byToken: make(map[string]int, len(people)),
		byID:    make(map[string]int, len(people)),
	}
	for i, per := range p.people {
		if j, dup := p.byID[per.IDNumber]; dup {
			return nil, fmt.Errorf("%w: rows %d and %d", ErrDuplicateID, j, i)
		}
		p.byID[per.IDNumber] = i
		if per.QRToken == "" {
			continue
		}
		if j, dup := p.byToken[per.QRToken]; dup {
			return nil, fmt.Errorf("%w: rows %d and %d", ErrDuplicateToken, j, i)
		}
		p.byToken[per.QRToken] = i
	}
	return p, nil
}

// Len returns the number of people.
func (p *Population) Len() int { return len(p.people) }

// People returns a copy of all people in file order.
func (p *Population) People() []Person { return append([]Person(nil), p.people...) }

// ByToken finds the person holding a QR token.
func (p *Population) ByToken(token string) (Person, bool) {
	if token == "" {
		return Person{}, false
	}
	i, ok := p.byToken[token]
	if !ok {
		return Person{}, false
	}
	return p.people[i], true
}

// ByID finds the person with an ID number.
func (p *Population) ByID(id string) (Person, bool) {
	i, ok := p.byID[id]
	if !ok {
		return Person{}, false
	}
	return p.people[i], true
}

// Load reads and parses the population file at path.
func Load(path string) (*Population, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("population: %w", err)
	}
	defer f.Close()
	p, err := Parse(f, path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	for i := range p.people {
		if fi := p.people[i].FaceImage; fi != "" && !filepath.IsAbs(fi) {
			p.people[i].FaceImage = filepath.Join(dir, fi)
		}
	}
	return p, nil
}

// Parse reads a population CSV. name is used in error messages only.
//
// The header must be exactly Header, or HeaderWithFace. Fields are trimmed of surrounding
// spaces. A row must have an ID number shaped like a GB 11643-1999 number
// (the check character is not verified), a name, a colour, and either both
// or neither of nat_result and nat_sampled_at. qr_token may be empty; a
// non-empty token and every ID number must be unique. A file without any
// person is an error.
func Parse(r io.Reader, name string) (*Population, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("population: read %s: %w", name, err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM left by a spreadsheet

	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1 // checked below, with a better message
	cr.ReuseRecord = true

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &ParseError{File: name, Line: 1, Err: ErrBadHeader, Detail: "empty file"}
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	cols, herr := checkHeader(header)
	if herr != nil {
		herr.File = name
		return nil, herr
	}

	var people []Person
	tokenLine := map[string]int{}
	idLine := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != cols {
			return nil, &ParseError{File: name, Line: line, Err: ErrBadCSV,
				Detail: fmt.Sprintf("want %d fields, got %d", cols, len(rec))}
		}
		per, col, detail, perr := parseRecord(rec[:numColumns])
		if perr != nil {
			return nil, &ParseError{File: name, Line: line, Column: col + 1, Field: Header[col], Detail: detail, Err: perr}
		}
		if cols > numColumns {
			per.FaceImage = strings.TrimSpace(rec[colFaceImage])
		}
		if first, dup := idLine[per.IDNumber]; dup {
			return nil, &ParseError{File: name, Line: line, Column: colID + 1, Field: Header[colID],
				Err: ErrDuplicateID, Detail: fmt.Sprintf("first on line %d", first)}
		}
		idLine[per.IDNumber] = line
		if per.QRToken != "" {
			if first, dup := tokenLine[per.QRToken]; dup {
				return nil, &ParseError{File: name, Line: line, Column: colQRToken + 1, Field: Header[colQRToken],
					Err: ErrDuplicateToken, Detail: fmt.Sprintf("first on line %d", first)}
			}
			tokenLine[per.QRToken] = line
		}
		people = append(people, per)
	}
	if len(people) == 0 {
		return nil, &ParseError{File: name, Line: 2, Err: ErrEmpty}
	}
	return New(people)
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		// pe.Err is a fixed message such as "bare \" in non-quoted field".
		return &ParseError{File: name, Line: pe.Line, Column: pe.Column, Err: ErrBadCSV, Detail: pe.Err.Error()}
	}
	return fmt.Errorf("population: read %s: %w", name, err)
}

// checkHeader returns the number of columns: len(Header), or len(HeaderWithFace).
func checkHeader(h []string) (int, *ParseError) {
	if len(h) != numColumns && len(h) != numColumns+1 {
		return 0, &ParseError{Line: 1, Err: ErrBadHeader,
			Detail: fmt.Sprintf("want %d columns %s (and optionally face_image), got %d", numColumns, strings.Join(Header, ","), len(h))}
	}
	for i, want := range HeaderWithFace[:len(h)] {
		if got := strings.TrimSpace(h[i]); got != want {
			return 0, &ParseError{Line: 1, Column: i + 1, Err: ErrBadHeader,
				Detail: fmt.Sprintf("want %q, got %q", want, got)}
		}
	}
	return len(h), nil
}

// parseRecord returns the person, or the 0-based column at fault, a detail
// free of personal data and the sentinel error.
func parseRecord(rec []string) (Person, int, string, error) {
	f := make([]string, numColumns)
	for i := range f {
		f[i] = strings.TrimSpace(rec[i])
	}
	var p Person

	p.IDNumber = f[colID]
	switch {
	case p.IDNumber == "":
		return p, colID, "", ErrMissing
	case !wellFormedID(p.IDNumber):
		return p, colID, "want 17 digits and a digit or X", ErrBadID
	}

	p.Name = f[colName]
	if p.Name == "" {
		return p, colName, "", ErrMissing
	}

	switch c := HealthCode(f[colHealthCode]); c {
	case Green, Yellow, Red:
		p.HealthCode = c
	case "":
		return p, colHealthCode, "", ErrMissing
	default:
		return p, colHealthCode, fmt.Sprintf("want green, yellow or red, got %q", f[colHealthCode]), ErrBadColour
	}

	switch r := NATResult(f[colNATResult]); r {
	case NoNAT, Negative, Positive:
		p.NATResult = r
	default:
		return p, colNATResult, fmt.Sprintf("want negative, positive or empty, got %q", f[colNATResult]), ErrBadNATResult
	}

	if s := f[colNATSampledAt]; s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return p, colNATSampledAt, fmt.Sprintf("%q", s), ErrBadTime
		}
		p.NATSampledAt = t
	}
	switch {
	case p.NATResult != NoNAT && p.NATSampledAt.IsZero():
		return p, colNATSampledAt, "required when nat_result is set", ErrMissing
	case p.NATResult == NoNAT && !p.NATSampledAt.IsZero():
		return p, colNATResult, "required when nat_sampled_at is set", ErrMissing
	}

	doses, err := strconv.Atoi(f[colVaccineDoses])
	if err != nil || doses < 0 {
		return p, colVaccineDoses, fmt.Sprintf("want a whole number >= 0, got %q", f[colVaccineDoses]), ErrBadNumber
	}
	p.VaccineDoses = doses

	p.QRToken = f[colQRToken]
	return p, 0, "", nil
}

// WriteCSV writes people as a population CSV with Header (HeaderWithFace when someone has a
// face image), times in RFC 3339.
func WriteCSV(w io.Writer, people []Person) error {
	cw := csv.NewWriter(w)
	header := Header
	for _, p := range people {
		if p.FaceImage != "" {
			header = HeaderWithFace
		}
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("population: write header: %w", err)
	}
	for i, p := range people {
		sampled := ""
		if !p.NATSampledAt.IsZero() {
			sampled = p.NATSampledAt.Format(time.RFC3339)
		}
		rec := []string{p.IDNumber, p.Name, string(p.HealthCode), string(p.NATResult), sampled,
			strconv.Itoa(p.VaccineDoses), p.QRToken}
		if len(header) > numColumns {
			rec = append(rec, p.FaceImage)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("population: write row %d: %w", i, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("population: write: %w", err)
	}
	return nil
}
