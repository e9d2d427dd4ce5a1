// Package auth owns who may use the relay: what a relay path means (the
// role and topic a client gets, parsed here once), signed tokens (JWT
// HS256) that name a path prefix and scopes, the decision for one websocket
// handshake, who may watch without a token, when a live token runs out,
// the access point that trades a bearer token for a one-time code (browsers
// cannot set headers, and a token in a URL leaks into logs), and revocation
// of token ids, kept in a state file; and which topics and tokens an admin
// token's path reaches.
//
// Relay auth lives in its own package, with no websocket or topic code, so
// that every refusal can be tested on its own; crossbar calls Authorize before each upgrade, joins
// the grant's topic in the grant's role, and mounts AccessHandler and
// DenyHandler, and cmd/vw calls Mint for `vw token`.
package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/internal/defaults"
)

// Scopes a token can carry.
const (
	ScopeRead  = "read"  // receive: /out/ routes, and half of a bidirectional route
	ScopeWrite = "write" // send: /in/ routes, and the other half of a bidirectional route
	ScopeAdmin = "admin" // see and deny under its path (Admin, DenyHandler); grants no route
)

// Defaults applied by New to a zero Config field.
const (
	DefaultAudience = "vw-relay"
	DefaultCodeTTL  = 30 * time.Second
	DefaultMaxTTL   = 366 * 24 * time.Hour
	// MinSecretLen is the shortest secret accepted: HS256 wants a key at
	// least as long as its 256-bit hash.
	MinSecretLen = 32
)

// Leeway is the clock skew tolerated on exp, nbf and iat, because `vw token`
// may run on another machine than the relay.
const Leeway = 30 * time.Second

const (
	maxTokenLen = 8 << 10 // no honest token is near this; refuse before parsing
	maxCodes    = 10000   // outstanding codes; bounds memory under a flood of /access calls
	maxDenied   = 10000   // deny-list entries; bounds memory if an admin script runs away
	// maxDeniedPerAdmin bounds the entries under one lab admin's path, so
	// that one lab's admin cannot fill the list and leave the others none.
	maxDeniedPerAdmin = 1000
)

// Config is what New needs. Only Secret decides whether auth is on.
type Config struct {
	// Secret signs and checks tokens. Empty means the relay runs open:
	// every route is allowed to everyone (Open reports it; warn at start).
	Secret []byte
	// Audience is put in minted tokens and required in presented ones, so a
	// token for one relay is refused by another sharing the secret.
	// Default DefaultAudience.
	Audience string
	// Public lists route prefixes ("demo/") whose /out/ routes anyone may
	// watch without a token. Publishing to them still needs a token.
	Public []string
	// CodeTTL is how long a code from the access point stays good.
	// Default DefaultCodeTTL.
	CodeTTL time.Duration
	// MaxTTL is the longest lifetime (exp - iat) a token may have: Mint
	// refuses longer ones and Authorize refuses them too. It is also how long
	// a denied id whose expiry is unknown is remembered. Default DefaultMaxTTL.
	MaxTTL time.Duration
	// MaxCodesPerClient caps the codes from the access point that one token
	// id, and one client address, may hold unused; more are refused with 429.
	// Default DefaultMaxCodesPerClient.
	MaxCodesPerClient int
	// StatePath is the file the deny list is kept in across restarts: New
	// loads it (an unusable file is an error) and every deny saves it.
	// Empty keeps the list in memory only.
	StatePath string
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Auth decides relay access. It is safe for concurrent use and starts no
// goroutine: expired codes and deny entries are swept lazily, so there is
// nothing to stop.
type Auth struct {
	secret   []byte
	audience string
	public   []string // normalized prefixes
	codeTTL  time.Duration
	maxTTL   time.Duration
	now      func() time.Time
	log      *logrus.Entry
	parser   *jwt.Parser

	codes     *codeTable
	statePath string

	codesIssued, codesRedeemed atomic.Uint64 // for CodeCounts

	mu            sync.Mutex
	denied        map[string][]Denial // by token id
	nDenied       int                 // entries in denied
	lastDenySweep time.Time
	onDeny        map[int]func(Denial)
	nextHook      int
	codeTag       string       // in front of every code issued (ShareCodes)
	remoteRedeem  CodeRedeemer // spends other relays' codes

	saveMu sync.Mutex // one save of the state file at a time
}

// Claims is the payload of a relay token.
type Claims struct {
	// Path is the route prefix the token covers, normalized to "lab1/"
	// form; "/" covers every route.
	Path string `json:"path"`
	// Scopes are what the holder may do under Path.
	Scopes []string `json:"scopes"`
	jwt.RegisteredClaims
}

// Grant is what a successful Authorize allowed: the relay joins the client
// to Topic in Role, reading nothing from the path itself, and uses ID and
// Path to find the connections to close when OnDeny reports a Denial, and
// Expired to close them when the token runs out.
type Grant struct {
	Route string // the request's path, checked canonical
	Role  Role   // what the client does there
	// Topic is the relay topic the route joins: /out/{x} for both /in/{x}
	// and /out/{x}, the path itself for any other route.
	Topic     string
	ID        string    // the token's jti; empty when Anonymous
	Path      string    // the token's prefix ("lab1/", or "/" for all)
	Scopes    []string  // the token's scopes
	Expires   time.Time // the token's exp; zero when Anonymous
	Anonymous bool      // no credentials were needed: a public route, or the relay runs open
}

// Has reports whether the grant carries scope.
func (g *Grant) Has(scope string) bool { return slices.Contains(g.Scopes, scope) }

// Expired reports whether the grant's token has expired by now, past
// Leeway: a live connection made with it should then be closed. An
// anonymous grant never expires.
func (g *Grant) Expired(now time.Time) bool {
	return !g.Expires.IsZero() && now.After(g.Expires.Add(Leeway))
}

func (c Config) withDefaults() (Config, error) {
	err := errors.Join(
		defaults.Positive("CodeTTL", &c.CodeTTL, DefaultCodeTTL),
		defaults.Positive("MaxTTL", &c.MaxTTL, DefaultMaxTTL),
		defaults.Positive("MaxCodesPerClient", &c.MaxCodesPerClient, DefaultMaxCodesPerClient),
	)
	defaults.Zero(&c.Audience, DefaultAudience)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, err
}

// New checks cfg and returns an Auth ready to use. log may be nil.
func New(cfg Config, log *logrus.Entry) (*Auth, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		log = logrus.NewEntry(l)
	}
	if len(cfg.Secret) > 0 {
		if err := CheckSecret(cfg.Secret); err != nil {
			return nil, err
		}
	}
	a := &Auth{
		secret:    slices.Clone(cfg.Secret),
		audience:  cfg.Audience,
		codeTTL:   cfg.CodeTTL,
		maxTTL:    cfg.MaxTTL,
		now:       cfg.Now,
		log:       log,
		statePath: cfg.StatePath,
		denied:    make(map[string][]Denial),
		onDeny:    make(map[int]func(Denial)),
	}
	a.codes = newCodeTable(a.codeTTL, cfg.MaxCodesPerClient)
	for _, p := range cfg.Public {
		if strings.TrimSpace(p) == "" {
			continue // "a,b," from an env var: an empty entry means nothing, not everything
		}
		n, err := normalizePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("auth: public prefix %q: %w", p, err)
		}
		a.public = append(a.public, n)
	}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(a.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(a.now),
	)
	if a.statePath != "" {
		if err := a.restore(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Open reports that no secret is configured: every route is allowed.
func (a *Auth) Open() bool { return len(a.secret) == 0 }

// Mint returns a signed token for path (a route prefix such as "lab1/", or
// "/" for every route) with scopes, valid for ttl from now, with a random id.
func (a *Auth) Mint(path string, scopes []string, ttl time.Duration) (string, error) {
	if a.Open() {
		return "", errors.New("auth: no secret configured: set VW_RELAY_SECRET or VW_RELAY_SECRET_FILE")
	}
	p, err := normalizePrefix(path)
	if err != nil {
		return "", fmt.Errorf("auth: path %q: %w", path, err)
	}
	sc, err := checkScopes(scopes)
	if err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: ttl %v: must be positive", ttl)
	}
	if ttl > a.maxTTL {
		return "", fmt.Errorf("auth: ttl %v: longer than the relay's maximum %v", ttl, a.maxTTL)
	}
	id, err := randomString(16)
	if err != nil {
		return "", err
	}
	now := a.now()
	c := Claims{
		Path:   p,
		Scopes: sc,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        id,
			Audience:  jwt.ClaimStrings{a.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

func checkScopes(scopes []string) ([]string, error) {
	var out []string
	for _, s := range scopes {
		s = strings.TrimSpace(s)
		switch s {
		case ScopeRead, ScopeWrite, ScopeAdmin:
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		default:
			return nil, fmt.Errorf("auth: unknown scope %q (want %s, %s or %s)", s, ScopeRead, ScopeWrite, ScopeAdmin)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("auth: no scope given (want read, write and/or admin)")
	}
	return out, nil
}

// Verify checks a token's signature, claims and deny status, without
// looking at any route. The Grant has no Route.
func (a *Auth) Verify(token string) (*Grant, error) {
	if a.Open() {
		return nil, &Error{Code: http.StatusUnauthorized, Reason: "relay runs without auth: tokens are not checked"}
	}
	if len(token) > maxTokenLen {
		return nil, unauthorized("token too long")
	}
	var c Claims
	if _, err := a.parser.ParseWithClaims(token, &c, a.key); err != nil {
		return nil, unauthorized(jwtReason(err))
	}
	if c.ID == "" {
		return nil, unauthorized("token has no id (jti), so it could not be revoked")
	}
	if c.IssuedAt == nil {
		return nil, unauthorized("token has no issue time (iat)")
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt.Time); life > a.maxTTL {
		return nil, unauthorized(fmt.Sprintf("token lives %v, longer than the relay's maximum %v", life, a.maxTTL))
	}
	p, err := normalizePrefix(c.Path)
	if err != nil {
		return nil, unauthorized("token path claim: " + err.Error())
	}
	if a.Denied(c.ID, p) {
		return nil, unauthorized("token id denied")
	}
	var sc []string
	for _, s := range c.Scopes {
		if s == ScopeRead || s == ScopeWrite || s == ScopeAdmin {
			sc = append(sc, s) // unknown scopes grant nothing; ignore rather than refuse
		}
	}
	return &Grant{ID: c.ID, Path: p, Scopes: sc, Expires: c.ExpiresAt.Time}, nil
}

func (a *Auth) key(*jwt.Token) (any, error) { return a.secret, nil }

func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature invalid (HS256 with the relay's secret required)"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token is for another audience"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token invalid: " + err.Error() // names the claim: "aud claim is required"
	default:
		return "token invalid"
	}
}

// Authorize decides one websocket handshake, before any upgrade. The route
// is r.URL.Path; credentials are an `Authorization: Bearer` token or a
// one-time `?code=` from the access point, not both. A refusal is an *Error
// (401 or 403, 400 for a malformed route or request): write it with
// WriteError.
func (a *Auth) Authorize(r *http.Request) (*Grant, error) {
	g, err := a.authorize(r)
	if err != nil {
		a.log.WithFields(logrus.Fields{"url": r.URL.Path, "err": err}).Debug("relay handshake refused")
		return nil, err
	}
	return g, nil
}

func (a *Auth) authorize(r *http.Request) (*Grant, error) {
	rt, err := parseRoute(r.URL.Path)
	if err != nil {
		return nil, err
	}
	if a.Open() || a.isPublic(rt) {
		return rt.grant(&Grant{Anonymous: true}), nil
	}
	q := r.URL.Query()
	hasCode := q.Has("code")
	hasBearer := len(r.Header.Values("Authorization")) > 0
	switch {
	case hasCode && hasBearer:
		return nil, &Error{Code: http.StatusBadRequest, Reason: "send a bearer token or a code, not both"}
	case hasCode:
		return a.redeem(q.Get("code"), rt)
	case hasBearer:
		tok, err := bearer(r)
		if err != nil {
			return nil, err
		}
		return a.check(tok, rt)
	default:
		return nil, unauthorized("missing credentials: send Authorization: Bearer <token>, or get a code from POST " + AccessPrefix + rt.path)
	}
}

// check verifies tok and that it covers rt.
func (a *Auth) check(tok string, rt route) (*Grant, error) {
	g, err := a.Verify(tok)
	if err != nil {
		return nil, err
	}
	if !covers(g.Path, rt.name) {
		return nil, &Error{Code: http.StatusForbidden, Reason: fmt.Sprintf("token for %s does not cover %s", g.Path, rt.path)}
	}
	for _, need := range rt.needs {
		if !g.Has(need) {
			return nil, &Error{Code: http.StatusForbidden, Reason: fmt.Sprintf("token lacks scope %s needed for %s", need, rt.path)}
		}
	}
	return rt.grant(g), nil
}

// Watchable reports whether anyone may watch topic, a relay path such as
// "/out/lab1/cam", without a token: the relay runs open, or a public prefix
// covers the stream. The relay's index lists only such streams.
func (a *Auth) Watchable(topic string) bool {
	if a.Open() {
		return true
	}
	rt, err := parseRoute(topic)
	return err == nil && a.isPublic(rt)
}

func (a *Auth) isPublic(rt route) bool {
	if rt.role != Viewer {
		return false
	}
	for _, p := range a.public {
		if covers(p, rt.name) {
			return true
		}
	}
	return false
}

// bearer extracts the token of the request's single Authorization header.
func bearer(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", unauthorized("missing credentials: send Authorization: Bearer <token>")
	case 1:
	default:
		return "", unauthorized("more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthorized("Authorization must be: Bearer <token>")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", unauthorized("empty bearer token")
	}
	return tok, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
