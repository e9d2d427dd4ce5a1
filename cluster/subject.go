package cluster

import (
	"crypto/sha256"
	"encoding/base64"
)

// Subjects. A NATS subject is tokens separated by '.', and '*' and '>' are
// wildcards, while a relay topic is any clean URL path: "/out/lab1.cam",
// "/out/a b", "/out/*" are all legal. So a topic never goes into a subject
// as it is: its bytes are written in unpadded base64url (A-Z a-z 0-9 - _),
// which has none of '.', '*', '>' or white space and maps distinct paths to
// distinct tokens. A path whose token would be longer than maxTopicToken
// (the server's control line is 4 KiB) goes by the SHA-256 of its bytes
// under another prefix instead; two paths could share that subject only by
// a SHA-256 collision.
//
//	vw.t.<base64url(topic)>     messages of a topic
//	vw.h.<base64url(sha256)>    messages of a topic with a very long path
//	vw.hb                       every relay's report, once a second
//	vw.deny                     a deny on any relay
//	vw.n.<tag>.<verb>           requests to one relay (tag: nodeTag)
const (
	subjectPrefix  = "vw."
	topicPrefix    = subjectPrefix + "t."
	hashedPrefix   = subjectPrefix + "h."
	heartbeatSubj  = subjectPrefix + "hb"
	denySubj       = subjectPrefix + "deny"
	nodePrefix     = subjectPrefix + "n."
	maxTopicToken  = 512
	verbDenyList   = "denylist"
	verbRedeemCode = "code"
)

var b64 = base64.RawURLEncoding

// topicSubject returns the subject carrying topic's messages.
func topicSubject(topic string) string {
	if b64.EncodedLen(len(topic)) <= maxTopicToken {
		return topicPrefix + b64.EncodeToString([]byte(topic))
	}
	sum := sha256.Sum256([]byte(topic))
	return hashedPrefix + b64.EncodeToString(sum[:])
}

// nodeTag is a short name for a node that is safe in a subject and in an
// access code: 11 characters of base64url of the SHA-256 of its name.
func nodeTag(node string) string {
	sum := sha256.Sum256([]byte(node))
	return b64.EncodeToString(sum[:8])
}

// nodeSubject is where node takes requests of the given verb.
func nodeSubject(tag, verb string) string {
	return nodePrefix + tag + "." + verb
}
