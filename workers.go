package omniq

// Workers is the registry of task kinds a client can run.
type Workers struct{}
