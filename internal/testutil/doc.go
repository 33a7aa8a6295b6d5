// Package testutil holds the helpers that tests of several packages share:
// a fake RESP server, the skip rules of the integration tests, polling, and
// a throwaway network namespace. Product code never imports it (a boundary
// test keeps it so); each helper has one home here instead of a copy per
// package.
package testutil
