"""Write the definitions file RabbitMQ imports at boot, with the users' passwords hashed in.

deploy/rabbitmq-definitions.json holds the vhost, the users (admin, gateway, worker) and
their permissions, and no secret. This adds each user's ``password_hash`` (RabbitMQ's
salted SHA-256, ``rabbit_password_hashing_sha256``) from ``RABBITMQ_<USER>_PASSWORD`` and
writes the result where ``load_definitions`` (deploy/rabbitmq.conf) points. RabbitMQ
imports that file at every boot, so the file stays the one truth about who may do what:
a user or permission changed in the management console is put back at the next restart.

The compose file runs it as a one-shot service before RabbitMQ starts. Without Docker
(stdlib only, Python 3.8+):

    sudo env RABBITMQ_ADMIN_PASSWORD=... RABBITMQ_GATEWAY_PASSWORD=... \\
        RABBITMQ_WORKER_PASSWORD=... python3 deploy/render_rabbitmq_definitions.py \\
        --output /etc/rabbitmq/definitions/definitions.json --owner rabbitmq:rabbitmq

Passwords must be at least 16 characters from ``A-Z a-z 0-9 - . _ ~``: they are written
verbatim into AMQP_URL, where anything else would need percent-encoding. Generate them
with ``python3 -c 'import secrets; print(secrets.token_urlsafe(32))'``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

MIN_PASSWORD_CHARS = 16
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
_HERE = Path(__file__).resolve().parent


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def password_variable(user: str) -> str:
    return "RABBITMQ_" + re.sub(r"[^A-Za-z0-9]", "_", user).upper() + "_PASSWORD"


def render(template: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    problems = []
    rendered: dict[str, Any] = json.loads(json.dumps(template))
    for user in rendered.get("users", []):
        variable = password_variable(user["name"])
        password = environ.get(variable, "")
        if len(password) < MIN_PASSWORD_CHARS:
            problems.append(f"{variable} must be set to at least {MIN_PASSWORD_CHARS} characters")
        elif not _URL_SAFE.fullmatch(password):
            problems.append(f"{variable} may only use A-Z a-z 0-9 - . _ ~ (it goes verbatim into AMQP_URL)")
        else:
            user["password_hash"] = password_hash(password)
            user["hashing_algorithm"] = "rabbit_password_hashing_sha256"
    if problems:
        raise SystemExit(
            "refusing to write RabbitMQ definitions:\n  "
            + "\n  ".join(problems)
            + "\ngenerate each with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return rendered


def write(path: Path, data: dict[str, Any], owner: str | None) -> None:
    """Atomically, readable by its owner (RabbitMQ) and group only: it holds password hashes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".definitions-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.chmod(tmp, 0o640)
        if owner:
            user, _, group = owner.partition(":")
            shutil.chown(tmp, int(user) if user.isdigit() else user, (int(group) if group.isdigit() else group) or None)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=_HERE / "rabbitmq-definitions.json")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--owner", help="USER[:GROUP] (names or ids) to own the output, e.g. 999:999")
    args = parser.parse_args(argv)
    rendered = render(json.loads(args.template.read_text()), dict(os.environ))
    write(args.output, rendered, args.owner)
    names = ", ".join(user["name"] for user in rendered.get("users", []))
    print(f"wrote {args.output} (users: {names})", file=sys.stderr)


if __name__ == "__main__":
    main()
