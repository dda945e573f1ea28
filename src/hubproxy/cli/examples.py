"""One example per command, shown at the end of its `--help` (`attach_examples`).

Kept in one table so that a test can require an example of every command, including those
added later: a command without one fails `tests/cli/test_help.py`.
"""

from typing import Any

EXAMPLES: dict[str, str] = {
    "serve": "hubproxy serve --host 0.0.0.0 --port 8000 --data-dir /var/lib/hubproxy"
    " --cache-max-bytes 500GiB",
    "admin backup": "hubproxy admin backup --to /backups/2026-12-01 --data-dir /var/lib/hubproxy",
    "admin restore": "hubproxy admin restore /backups/2026-12-01 --data-dir /var/lib/hubproxy-new",
    "admin migrate": "hubproxy admin migrate --database-url postgresql://hubproxy@db/hubproxy",
    "admin migrate-to": "hubproxy admin migrate-to postgresql://hubproxy@db/hubproxy"
    " --storage s3 --s3-bucket ml-cache"
    " --data-dir /var/lib/hubproxy",
    "admin audit": "hubproxy admin audit --repo acme/llama --since 7d --denied",
    "admin prune-audit": "hubproxy admin prune-audit --before 90d",
    "admin user create": "hubproxy admin user create alice --admin --data-dir /var/lib/hubproxy",
    "admin user list": "hubproxy admin user list --json",
    "admin user disable": "hubproxy admin user disable bob",
    "admin user enable": "hubproxy admin user enable bob",
    "admin token create": "hubproxy admin token create alice --scope write --expires 90d",
    "admin token list": "hubproxy admin token list --user alice",
    "admin token revoke": "hubproxy admin token revoke tok_0123456789ab",
    "admin robot create": "hubproxy admin robot create acme ci --permission read"
    " --permission write --expires 30d",
    "admin robot list": "hubproxy admin robot list --project acme",
    "admin robot revoke": "hubproxy admin robot revoke ci",
    "admin project create": "hubproxy admin project create acme --kind hosted"
    " --fullname 'Acme Corp'",
    "admin project list": "hubproxy admin project list",
    "admin project delete": "hubproxy admin project delete acme --delete-repos",
    "admin member add": "hubproxy admin member add acme alice --role maintainer",
    "admin member remove": "hubproxy admin member remove acme bob",
    "admin member list": "hubproxy admin member list acme --endpoint https://hub.example"
    " --token hp_...",
    "admin protect": "hubproxy admin protect acme/sentiment 'v*' --immutable --min-role maintainer",
    "registry promote": "hubproxy registry promote acme/sentiment --alias champion --to v3"
    " --expect 1a2b3c4d --endpoint https://hub.example --token hp_...",
    "registry aliases": "hubproxy registry aliases acme/sentiment",
    "registry show": "hubproxy registry show acme/sentiment --json",
    "registry lineage": "hubproxy registry lineage acme/sentiment-small",
    "admin policy show": "hubproxy admin policy show",
    "admin policy set": "hubproxy admin policy set --mode allow-list --pattern 'meta-llama/*'",
    "cache ls": "hubproxy cache ls --data-dir /var/lib/hubproxy",
    "cache pin": "hubproxy cache pin meta-llama/Llama-3.1-8B@main",
    "cache unpin": "hubproxy cache unpin meta-llama/Llama-3.1-8B@main",
    "cache evict": "hubproxy cache evict openai-community/gpt2",
    "cache gc": "hubproxy cache gc --json",
    "cache verify": "hubproxy cache verify",
    "mirror preload": "hubproxy mirror preload meta-llama/Llama-3.1-8B --include '*.json'"
    " --include '*.safetensors' --endpoint http://hubproxy:8000",
    "mirror export": "hubproxy mirror export openai-community/gpt2@main --to /media/usb/bundle",
    "mirror import": "hubproxy mirror import /media/usb/bundle --data-dir /var/lib/hubproxy",
}


def attach_examples(command: Any, path: tuple[str, ...] = ()) -> None:
    """Set the epilog of every command under `command` to its example (`\\b` keeps click from
    rewrapping the command line)."""
    example = EXAMPLES.get(" ".join(path))
    if example is not None:
        command.epilog = f"\b\nExample:\n  {example}"
    for name, child in getattr(command, "commands", {}).items():
        attach_examples(child, (*path, name))
