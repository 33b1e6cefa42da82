// Package bytebudget bounds the bytes that many goroutines together hold:
// the transport's buffers for messages still arriving and the node's queue
// of messages waiting for its loop use one Budget each.
package bytebudget
