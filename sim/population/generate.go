package population

import (
	"math/rand/v2"
	"time"
)

// The fixed QR tokens of a generated population, one per kind of person, so
// tests and demos can rely on them.
const (
	TokenGreenFresh = "HC-GREEN-FRESH" // green, negative sampled 6h ago, 3 doses
	TokenGreenOld   = "HC-GREEN-OLD"   // green, negative sampled 100h ago
	TokenGreenNoNAT = "HC-GREEN-NONAT" // green, no test on record
	TokenYellow     = "HC-YELLOW"      // yellow, negative fresh
	TokenRed        = "HC-RED"         // red, negative fresh
	TokenGreenPos   = "HC-GREEN-POS"   // green, positive fresh
	// TokenUnknown is in every generated token list and in no population.
	TokenUnknown = "HC-UNKNOWN-0001"
)

// Ages of the generated tests.
const (
	FreshAge = 6 * time.Hour
	OldAge   = 100 * time.Hour
)

// DefaultRandom is the number of random people Generate adds by default.
const DefaultRandom = 20

// GenerateOptions shape a synthetic population.
type GenerateOptions struct {
	Now    time.Time // times are relative to it; zero means time.Now()
	Seed   uint64    // the same seed and Now give the same population
	Random int       // random people after the fixed ones; < 0 means DefaultRandom
}

var areaCodes = []string{
	"350582", // 晋江市
	"350203", // 厦门思明区
	"110105", // 北京朝阳区
	"310115", // 上海浦东新区
	"440305", // 深圳南山区
	"330106", // 杭州西湖区
	"510107", // 成都武侯区
	"420106", // 武汉武昌区
}

var surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈")

var givenChars = []rune("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华建国志红玉兰文辉鹏宇浩然欣怡子涵梓轩雨婷晨阳思远嘉诚家豪")

// Generate returns a synthetic population: first the six fixed people of the
// Token* constants, then opts.Random random people with tokens "HC-" plus 8
// upper-case letters and digits, mostly green with a fresh negative test.
// Every ID number is a valid GB 11643-1999 number and unique.
func Generate(opts GenerateOptions) []Person {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	n := opts.Random
	if n < 0 {
		n = DefaultRandom
	}
	g := &generator{rng: rand.New(rand.NewPCG(opts.Seed, 0x5e971e1)), ids: map[string]bool{}, tokens: map[string]bool{}}

	fresh := now.Add(-FreshAge)
	fixed := []struct {
		token  string
		code   HealthCode
		nat    NATResult
		sample time.Time
		doses  int
	}{
		{TokenGreenFresh, Green, Negative, fresh, 3},
		{TokenGreenOld, Green, Negative, now.Add(-OldAge), 2},
		{TokenGreenNoNAT, Green, NoNAT, time.Time{}, 0},
		{TokenYellow, Yellow, Negative, fresh, 3},
		{TokenRed, Red, Negative, fresh, 1},
		{TokenGreenPos, Green, Positive, fresh, 3},
	}
	people := make([]Person, 0, len(fixed)+n)
	for _, f := range fixed {
		g.tokens[f.token] = true
		people = append(people, Person{
			IDNumber: g.id(), Name: g.name(), HealthCode: f.code,
			NATResult: f.nat, NATSampledAt: f.sample, VaccineDoses: f.doses, QRToken: f.token,
		})
	}
	for i := 0; i < n; i++ {
		p := Person{IDNumber: g.id(), Name: g.name(), HealthCode: Green, NATResult: Negative,
			VaccineDoses: g.rng.IntN(4), QRToken: g.token()}
		// About one in ten is yellow, one in twenty red, one in ten has an old
		// test and one in ten none.
		switch r := g.rng.IntN(20); {
		case r < 2:
			p.HealthCode = Yellow
		case r < 3:
			p.HealthCode = Red
		}
		switch r := g.rng.IntN(10); {
		case r == 0:
			p.NATResult = NoNAT
		case r == 1:
			p.NATSampledAt = now.Add(-time.Duration(49+g.rng.IntN(100)) * time.Hour)
		default:
			p.NATSampledAt = now.Add(-time.Duration(1+g.rng.IntN(40)) * time.Hour)
		}
		people = append(people, p)
	}
	return people
}

// TokenList returns every non-empty QR token of people once plus
// TokenUnknown, shuffled with seed.
func TokenList(people []Person, seed uint64) []string {
	tokens := make([]string, 0, len(people)+1)
	for _, p := range people {
		if p.QRToken != "" {
			tokens = append(tokens, p.QRToken)
		}
	}
	tokens = append(tokens, TokenUnknown)
	rng := rand.New(rand.NewPCG(seed, 0x70c3e5))
	rng.Shuffle(len(tokens), func(i, j int) { tokens[i], tokens[j] = tokens[j], tokens[i] })
	return tokens
}

type generator struct {
	rng    *rand.Rand
	ids    map[string]bool
	tokens map[string]bool
}

func (g *generator) id() string {
	for {
		area := areaCodes[g.rng.IntN(len(areaCodes))]
		birth := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, g.rng.IntN(55*365))
		id, err := NewID(area, birth, g.rng.IntN(1000))
		// err is impossible: the area codes have 6 digits and seq is in range.
		if err == nil && !g.ids[id] {
			g.ids[id] = true
			return id
		}
	}
}

func (g *generator) name() string {
	name := []rune{surnames[g.rng.IntN(len(surnames))], givenChars[g.rng.IntN(len(givenChars))]}
	if g.rng.IntN(3) > 0 {
		name = append(name, givenChars[g.rng.IntN(len(givenChars))])
	}
	return string(name)
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func (g *generator) token() string {
	for {
		b := []byte("HC-")
		for i := 0; i < 8; i++ {
			b = append(b, tokenAlphabet[g.rng.IntN(len(tokenAlphabet))])
		}
		if t := string(b); !g.tokens[t] {
			g.tokens[t] = true
			return t
		}
	}
}
