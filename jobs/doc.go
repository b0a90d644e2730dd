// Package jobs is OmniQ's task model: the task row and its statuses, results,
// insert options, retry policies, the typed worker interface and the registry
// of kinds. It holds no SQL; the queue package stores what this package
// describes.
package jobs
