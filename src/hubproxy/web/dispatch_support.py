"""What page handlers read and set beside their response: the posted form and cookies (the
page dispatcher parses the one and sends the others, `web/dispatch.py`)."""

from hubproxy.hf_api.call import Call


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None) -> str:
    """A `Set-Cookie` value: always HttpOnly and SameSite=Lax, Secure over https."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def add_cookie(call: Call, name: str, value: str, *, max_age: int | None) -> None:
    """Send a cookie with the page's response."""
    state = call.request.state
    state.web_cookies.append(cookie_header(name, value, secure=state.web_secure, max_age=max_age))


def form_value(call: Call, name: str) -> str:
    """A field of the posted form ('' when absent)."""
    form: dict[str, str] = getattr(call.request.state, "web_form", {})
    return form.get(name, "")
