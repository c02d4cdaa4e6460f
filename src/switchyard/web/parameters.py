"""The API tab's parameters table: type and a short description of each request parameter.

The names and types follow OpenRouter's chat completions request schema; the descriptions
are ours. A model's table lists the parameters its endpoints accept, with its defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    type: str
    default: str
    description: str


_DOCS: dict[str, tuple[str, str]] = {
    "max_tokens": ("integer", "The most tokens the model may generate in its reply."),
    "max_completion_tokens": (
        "integer",
        "Newer name for max_tokens: an upper bound on generated tokens, reasoning included.",
    ),
    "temperature": (
        "number",
        "Randomness of sampling, 0 to 2. Lower values give more focused, repeatable answers.",
    ),
    "top_p": (
        "number",
        "Nucleus sampling: sample only from the tokens whose probability mass "
        "adds up to this value (0 to 1).",
    ),
    "top_k": ("integer", "Sample only from the k most likely tokens; 0 turns the limit off."),
    "min_p": (
        "number",
        "Drop tokens whose probability is below this fraction of the most likely token's.",
    ),
    "stop": (
        "string | string[]",
        "Up to four sequences at which generation stops; they are not included in the output.",
    ),
    "seed": (
        "integer",
        "Ask for deterministic sampling: the same seed and request should give "
        "the same output, where the provider supports it.",
    ),
    "frequency_penalty": (
        "number",
        "Penalise tokens by how often they already appeared (-2 to 2), reducing repetition.",
    ),
    "presence_penalty": (
        "number",
        "Penalise tokens that appeared at all (-2 to 2), nudging the model towards new topics.",
    ),
    "repetition_penalty": (
        "number",
        "Multiplicative penalty on repeated tokens (0 to 2); 1 means none.",
    ),
    "logit_bias": (
        "map<token id, number>",
        "Add a bias from -100 to 100 to specific token ids before sampling.",
    ),
    "logprobs": ("boolean", "Return the log probability of each output token."),
    "top_logprobs": (
        "integer",
        "With logprobs, also return this many most likely alternatives per position (0 to 20).",
    ),
    "response_format": (
        "object",
        'Constrain the output: {"type": "json_object"} or a JSON schema.',
    ),
    "structured_outputs": (
        "boolean",
        "The endpoint can enforce a JSON schema given in response_format.",
    ),
    "tools": (
        "object[]",
        "Functions the model may call, each with a name, description and "
        "JSON schema of its arguments.",
    ),
    "tool_choice": (
        "string | object",
        "Whether and which tool to call: none, auto, required, or a named function.",
    ),
    "parallel_tool_calls": ("boolean", "Allow several tool calls in one reply."),
    "web_search_options": (
        "object",
        "Settings for the model's built-in web search, such as search_context_size.",
    ),
    "reasoning": (
        "object",
        "How much the model should think before answering (effort or "
        "max_tokens), and whether to return its reasoning.",
    ),
    "include_reasoning": ("boolean", "Return the model's reasoning tokens with the answer."),
}


def parameters_table(supported: list[str], defaults: dict[str, object]) -> list[Parameter]:
    rows = []
    for name in supported:
        kind, description = _DOCS.get(name, ("—", "Passed through to the provider."))
        default = defaults.get(name)
        rows.append(Parameter(name, kind, "—" if default is None else str(default), description))
    return rows
