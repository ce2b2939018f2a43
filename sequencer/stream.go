package sequencer

// bundleStreamPrefix starts the sequencer key of a user's v1 bundle stream. It begins with a
// control character, which no authenticated user id may contain (the verifier refuses them),
// so a bundle stream's key never equals a v0 user's key.
const bundleStreamPrefix = "\x1ev1\x1e"

// BundleStream returns the key under which user's v1 bundles are sequenced, announced and
// watched. Everything keyed by user in this package, in push and in cluster (the sequence row,
// advances, hub subscriptions, fan-out subjects, reconciliation) works on it unchanged, so v1
// bundle_seq values are dense, per user and in commit order exactly as v0 server ids are, while
// the two sequences of one user never mix.
func BundleStream(user string) string { return bundleStreamPrefix + user }
