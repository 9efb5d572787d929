"""LLM clients behind one small interface, for HopRAG pseudo-query generation.

Public API (details in the submodules):
    LLMClient, LLMError, LLMConfigError        indexer.llm.base
    LLMRequest, run_requests, run_requests_sync, runner_options, get_llm   indexer.llm.runner
    GeminiLLM                                  indexer.llm.gemini (imported on demand: the SDK is slow to load)
    OpenAICompatLLM                            indexer.llm.openai_compat
"""

from .base import LLMClient, LLMConfigError, LLMError
from .runner import LLMRequest, get_llm, run_requests, run_requests_sync, runner_options

__all__ = [
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMRequest",
    "get_llm",
    "run_requests",
    "run_requests_sync",
    "runner_options",
]
