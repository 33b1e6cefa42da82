// Package wiretest checks hand-written codecs ([wire.BodyAppender],
// [wire.BodyDecoder]) against the reflective codec they stand in for. It is
// imported by tests only.
package wiretest
