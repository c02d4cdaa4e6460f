"""Generation tracing around llama-cpp-python's ``Llama`` class.

llama.cpp is imported lazily (it is heavy), so the traced class is built on first use by
:func:`tracing_llama_class`. Its sampling hook records what each generation saw in a
:class:`Trace`: the prompt and completion token counts that usage reports, the logprobs the
request asked for, and a cancelled flag checked between tokens, so a client that goes away
stops the generation within one token.

Logprobs: llama-cpp-python only offers them with ``logits_all=True``, which keeps logits for
every context position (gigabytes at 8K context). Instead :class:`_TracingLlama` reads the
last position's logits at each sampling step, which is all OpenAI-style logprobs need.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np


class GenerationCancelled(Exception):
    """Raised inside llama.cpp's sampling loop to stop a generation nobody waits for."""


class Trace:
    """What one generation's sampling steps saw: token counts and, if asked, logprobs."""

    def __init__(self, top_logprobs: int | None) -> None:
        self.prompt_tokens: int | None = None
        self.completion_tokens = 0
        self.top_logprobs = top_logprobs
        self.logprobs: list[dict[str, Any]] = []
        self.cancelled = threading.Event()


class _KeepStdio:
    """Stands in for llama-cpp-python's ``suppress_stdout_stderr``; see :func:`_keep_stdio`."""

    def __init__(self, disable: bool = True) -> None:
        pass

    def __enter__(self) -> _KeepStdio:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _keep_stdio() -> None:
    """Stop llama-cpp-python from pointing the whole process's stdout/stderr at /dev/null.

    With ``verbose=False`` it dup2()s /dev/null over fds 1 and 2 while a model loads. That is
    process-wide: for the seconds a load takes, every other thread's log lines vanish (a
    request's warnings, the server's own messages). llama.cpp's chatter already passes
    through llama-cpp-python's log callback, which ``verbose=False`` filters, so without the
    redirect a load still prints only a line or two of llama.cpp warnings.
    """
    from llama_cpp import _internals, llama, llama_chat_format

    modules: tuple[Any, ...] = (llama, _internals, llama_chat_format)
    for module in modules:
        module.suppress_stdout_stderr = _KeepStdio


def tracing_llama_class() -> type:
    import llama_cpp

    _keep_stdio()

    class _TracingLlama(llama_cpp.Llama):
        trace: Trace | None = None

        def sample(self, *args: Any, **kwargs: Any) -> int:
            token: int = super().sample(*args, **kwargs)
            trace = self.trace
            if trace is None:
                return token
            if trace.cancelled.is_set():
                raise GenerationCancelled
            if trace.prompt_tokens is None:
                trace.prompt_tokens = self.n_tokens
            if llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
                return token
            trace.completion_tokens += 1
            if trace.top_logprobs is not None:
                trace.logprobs.append(self._logprob_entry(token, trace.top_logprobs))
            return token

        def _logprob_entry(self, token: int, top: int) -> dict[str, Any]:
            ptr = llama_cpp.llama_get_logits_ith(self._ctx.ctx, -1)
            logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
            peak = float(logits.max())
            lse = peak + math.log(float(np.exp(logits - peak).sum()))
            entry = self._token_entry(token, float(logits[token]) - lse)
            if top:
                best = np.argpartition(-logits, top)[:top]
                best = best[np.argsort(-logits[best])]
                entry["top_logprobs"] = [
                    self._token_entry(int(t), float(logits[t]) - lse) for t in best
                ]
            else:
                entry["top_logprobs"] = []
            return entry

        def _token_entry(self, token: int, logprob: float) -> dict[str, Any]:
            raw = self.detokenize([token])
            return {
                "token": raw.decode("utf-8", "replace"),
                "logprob": logprob,
                "bytes": list(raw),
            }

    return _TracingLlama
