// Package kvtest holds checks shared by the tests of the store's packages:
// [BackendContract], the contract every kv.Backend must meet, run against
// kv.Memory by package kv's tests and against the bbolt backend by package
// boltstore's. It is imported by tests only.
package kvtest
