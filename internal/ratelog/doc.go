// Package ratelog writes warnings that peers or clients can trigger by the
// thousand (refused requests, dropped messages) at most once per interval,
// with the number of occurrences left out since the previous line, so that a
// flood cannot fill the disk through the logs while every occurrence stays
// counted where it belongs (Stats, /metrics).
package ratelog
