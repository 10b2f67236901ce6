"""What a run refers to models by (ModelRef, EndpointRef) and the pool that loads them lazily
and hands stages a generator, in-process or over HTTP."""
