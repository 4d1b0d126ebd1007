"""What the tests and the benchmarks share (neither imports the other): in-memory stand-ins for
the queues and the mailer, the in-process AWS builder, API Gateway events, and the services wired
with whatever collaborators a caller passes (`local.kit.services.build`)."""
