"""Code shared by the gateway and the workers: wire schemas, task kinds, settings,
names of queues and exchanges, the task store and the error hierarchy."""
