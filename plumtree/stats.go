package plumtree

// Stats counts what a [Core] did. Message counts are per message sent or
// received; announcement counts are per ID carried by IHAVE messages.
type Stats struct {
	// Broadcasts counts the local broadcasts sent.
	Broadcasts uint64
	// BroadcastsDropped counts local broadcasts refused: payload too large,
	// or an ID already seen.
	BroadcastsDropped uint64
	// Delivered counts the messages handed to the application.
	Delivered uint64
	// PayloadsSent and PayloadsReceived count GOSSIP messages.
	PayloadsSent     uint64
	PayloadsReceived uint64
	// DuplicatePayloads counts GOSSIPs received for a message already seen.
	DuplicatePayloads uint64
	// PayloadsRecovered counts payloads that arrived after a GRAFT was sent
	// for them (lazy repair).
	PayloadsRecovered uint64
	// IHavesSent and IHavesReceived count IHAVE messages.
	IHavesSent     uint64
	IHavesReceived uint64
	// AnnouncementsSent and AnnouncementsReceived count the IDs they carry.
	AnnouncementsSent     uint64
	AnnouncementsReceived uint64
	// AnnouncementsDropped counts announcements of missing messages ignored
	// because Config.MaxMissing messages were already tracked.
	AnnouncementsDropped uint64
	// GraftsSent and GraftsReceived count GRAFT messages.
	GraftsSent     uint64
	GraftsReceived uint64
	// GraftsUnanswered counts IDs grafted whose payload was no longer cached.
	GraftsUnanswered uint64
	// MissingAbandoned counts missing messages given up after every
	// announcer had been grafted MaxGraftAttempts times in all, or had gone.
	MissingAbandoned uint64
	// PrunesSent and PrunesReceived count PRUNE messages.
	PrunesSent     uint64
	PrunesReceived uint64
	// TreesSent and TreesReceived count TREE advertisements
	// (Config.RootedTree), ParentChanges the changes of parent in the
	// rooted tree.
	TreesSent     uint64
	TreesReceived uint64
	ParentChanges uint64
	// TreeRepairs counts the TREE messages (included in TreesSent) sent to
	// mend a disagreement between the two ends of a link: to a stranger
	// that sent tree traffic, to a neighbour that pushed a payload without
	// being a tree link, to a parent that announced instead of pushing.
	TreeRepairs uint64
	// RelaysSent counts broadcasts sent to the root besides the tree
	// (Config.RelayToRoot), RelaysSkipped the broadcasts not relayed because
	// this node is the root, knows none, or the root is a tree link
	// already; RelaysReceived the payloads received from their origin over
	// a link that is not a neighbour's (the root's side of the relay).
	RelaysSent     uint64
	RelaysSkipped  uint64
	RelaysReceived uint64
	// SummariesSent and SummariesReceived count SUMMARY messages, sent to
	// every new neighbour while payloads are kept.
	SummariesSent     uint64
	SummariesReceived uint64
	// MessagesRecovered counts messages delivered after a new neighbour's
	// SUMMARY named them: messages missed while this node was cut off from
	// their origin (a subset of PayloadsRecovered).
	MessagesRecovered uint64
	// OptimizationSwaps counts eager links swapped for shorter lazy ones.
	OptimizationSwaps uint64
	// Refused counts received messages that failed validation.
	Refused uint64
	// RefusedStale counts GOSSIPs refused because their origin sent them
	// longer ago than the seen cache covers (SeenTTL − MaxClockSkew): a
	// replay, or a message held back far too long.
	RefusedStale uint64
	// RefusedFuture counts GOSSIPs refused because their send time was more
	// than MaxClockSkew ahead of this node's clock.
	RefusedFuture uint64
	// RefusedSignature counts GOSSIPs refused, with RequireSignatures, for
	// lack of a valid signature of their origin: unsigned, signed by
	// another key, or altered after signing.
	RefusedSignature uint64
	// HopsClamped counts GOSSIPs and IHAVE announcements whose hop count was
	// over MaxHops and was clamped to it.
	HopsClamped uint64
	// FromStrangers counts IHAVE, GRAFT and PRUNE messages ignored because
	// their sender was not a neighbour.
	FromStrangers uint64
}
