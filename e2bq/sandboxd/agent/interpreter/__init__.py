"""The code interpreter, on port 49999 as the e2b SDK calls it: ``/execute`` and ``/contexts``.

- ``service``: the routes, and the code contexts they create, find and delete.
- ``contexts``: one context: a kernel, its working directory, one execution at a time.
- ``execution``: one ``/execute`` call, driving the kernel and streaming its lines.
- ``kernels``: an IPython kernel as a child process, and its client.
- ``kernel_startup``: code each kernel runs at start (sent as source, read from this file's path).
- ``mime``: kernel messages turned into E2B's output lines.
"""
