"""Layer 2: the transcoder — PyAV decoders and encoders, the ladder, the worker process.

``ladder`` and ``governor`` are pure decisions (which rungs, which frames are keyframes,
when to shed load); ``protocol`` frames the pipe between server and worker;
``pipeline`` is the threaded decode-once/encode-per-rung engine; ``worker`` is the
process entry point (``python -m mediasrv.transcode.worker``). The asyncio side lives in
``mediasrv.transcode.service``.
"""
