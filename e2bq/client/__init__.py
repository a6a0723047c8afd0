"""The client library: what an application calls (SandboxManager, E2BToolkit) and how it reaches the
workers (tasks sent by name through Redis). It never talks to a sandbox itself."""
