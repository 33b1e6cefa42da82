package node

import "time"

// warnInterval is the interval of the runtime's rate-limited warnings
// (package ratelog): a peer that makes this node drop or refuse messages by
// the thousand must not fill the disk through its logs.
const warnInterval = 10 * time.Second
