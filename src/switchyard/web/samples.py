"""The API tab's sample code: one request to this model in curl, Python and TypeScript."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    id: str
    label: str
    language: str
    code: str


def samples(base_url: str, model_id: str) -> list[Sample]:
    api = f"{base_url}/api/v1"
    curl = f"""curl {api}/chat/completions \\
  -H "Authorization: Bearer $SWITCHYARD_API_KEY" \\
  -H "Content-Type: application/json" \\
  -H "HTTP-Referer: https://example.com" \\
  -H "X-OpenRouter-Title: My App" \\
  -d '{{
  "model": "{model_id}",
  "messages": [{{"role": "user", "content": "What is the meaning of life?"}}]
}}'"""
    openai_py = f"""import os
from openai import OpenAI

client = OpenAI(base_url="{api}", api_key=os.environ["SWITCHYARD_API_KEY"])

completion = client.chat.completions.create(
    extra_headers={{
        "HTTP-Referer": "https://example.com",  # optional: your site, for rankings
        "X-OpenRouter-Title": "My App",  # optional: your app's name, for rankings
    }},
    model="{model_id}",
    messages=[{{"role": "user", "content": "What is the meaning of life?"}}],
)
print(completion.choices[0].message.content)"""
    openrouter_py = f"""import os
from openrouter import OpenRouter

with OpenRouter(
    api_key=os.environ["SWITCHYARD_API_KEY"],
    server_url="{api}",
    http_referer="https://example.com",  # optional: your site, for rankings
    x_open_router_title="My App",  # optional: your app's name, for rankings
) as client:
    response = client.chat.send(
        model="{model_id}",
        messages=[{{"role": "user", "content": "What is the meaning of life?"}}],
    )
    print(response.choices[0].message.content)"""
    typescript = f"""import OpenAI from "openai";

const client = new OpenAI({{
  baseURL: "{api}",
  apiKey: process.env.SWITCHYARD_API_KEY,
  defaultHeaders: {{
    "HTTP-Referer": "https://example.com", // optional: your site, for rankings
    "X-OpenRouter-Title": "My App", // optional: your app's name, for rankings
  }},
}});

const completion = await client.chat.completions.create({{
  model: "{model_id}",
  messages: [{{ role: "user", content: "What is the meaning of life?" }}],
}});
console.log(completion.choices[0].message.content);"""
    return [
        Sample("curl", "curl", "shell", curl),
        Sample("openai-python", "Python (openai SDK)", "python", openai_py),
        Sample("openrouter-python", "Python (openrouter SDK)", "python", openrouter_py),
        Sample("typescript", "TypeScript (openai SDK)", "typescript", typescript),
    ]
