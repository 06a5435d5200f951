"""A small in-memory fake of the Hugging Face Hub HTTP API, for tests only.

It speaks exactly the part of the API that huggingface_hub 2.4.0 uses to create a repo, list its refs,
upload a folder as one commit that also deletes the files the folder no longer has (preupload answers
"regular" for every file, so content arrives base64-inline in the NDJSON commit and neither LFS nor Xet is
involved), tag it, and read it back (model info, tree listing, resolve). Anything else is answered with HTTP
501 and recorded in ``unexpected`` so that a test fails loudly instead of passing
by luck.

Usage::

    with FakeHub(token="hf_test") as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        ...
        assert not hub.unexpected
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REPO = rf"(?P<repo>{_NAME}/{_NAME})"


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob: what the Hub reports as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    """One model repository: a linear history of full snapshots, branches and tags pointing at commits."""

    repo_id: str
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {path: content}
    history: list[dict] = field(default_factory=list)  # [{"sha", "summary", "parent"}]
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag name -> sha
    tags: dict[str, str] = field(default_factory=dict)
    # The client parses dates with exactly this pattern (milliseconds and a literal Z).
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    )

    def __post_init__(self) -> None:
        # The Hub creates a repo with an initial commit (holding .gitattributes); an empty snapshot will do.
        sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        self.commits[sha] = {}
        self.history.append({"sha": sha, "summary": "initial commit", "parent": None})
        self.refs["main"] = sha

    def resolve(self, revision: str) -> str | None:
        """A branch, tag or full commit sha -> commit sha, or None."""
        revision = unquote(revision)
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None


class FakeHub:
    """The server. ``token`` is the only write token accepted; reads of public repos need none."""

    def __init__(self, token: str = "hf_fake_write_token", user: str = "tester") -> None:
        self.token = token
        self.user = user
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.unexpected: list[str] = []  # requests this fake does not implement (answered 501)
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        """Listen on 127.0.0.1 at a free port (port 0: the OS picks) in a daemon thread."""
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- helpers for tests ----------------------------------------------------------------------------
    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The snapshot of ``repo_id`` at ``revision``."""
        repo = self.repos[repo_id]
        sha = repo.resolve(revision)
        assert sha is not None, f"no revision {revision} in {repo_id}"
        return repo.commits[sha]

    def writes(self) -> list[tuple[str, str]]:
        """Every request that changes state (or prepares to): creates, preuploads, commits, tags."""
        return [(m, p) for m, p in self.requests if m == "POST"]


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean; every request is recorded in hub.requests instead

    # --- plumbing -------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )

    def _error(self, status: int, message: str, code: str | None = None, extra: dict | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        self._json(status, {"error": message}, headers)

    def _not_implemented(self) -> None:
        what = f"{self.command} {self.path}"
        with self.hub.lock:
            self.hub.unexpected.append(what)
        self._error(501, f"fake hub: not implemented: {what}")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.hub.token}"

    def _repo(self, repo_id: str, write: bool = False) -> Repo | None:
        """The repo, or None after answering 404/401 the way the Hub does (private repos look absent)."""
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404, f"Repository not found: {repo_id}", "RepoNotFound")
            return None
        if write and not self._authorized():
            self._error(401, "Invalid credentials in Authorization header")
            return None
        return repo

    def _revision(self, repo_id: str, rev: str, write: bool = False) -> tuple[Repo, str] | None:
        """The repo and the commit ``rev`` names, or None after answering the Hub's 404/401."""
        repo = self._repo(repo_id, write=write)
        if repo is None:
            return None
        sha = repo.resolve(rev)
        if sha is None:
            self._error(404, f"Revision not found: {rev}", "RevisionNotFound")
            return None
        return repo, sha

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        with self.hub.lock:
            self.hub.requests.append((self.command, path))
        for method, pattern, handler in ROUTES:
            if method == self.command or (method == "GET" and self.command == "HEAD" and handler is _resolve):
                m = re.fullmatch(pattern, path)
                if m:
                    with self.hub.lock:
                        handler(self, query=query, **m.groupdict())
                    return
        self._not_implemented()

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _dispatch


# --- routes ---------------------------------------------------------------------------------------
def _create_repo(h: _Handler, query: dict) -> None:
    payload = json.loads(h._body() or b"{}")
    if not h._authorized():
        h._error(401, "Invalid credentials in Authorization header")
        return
    if payload.get("type", "model") != "model":
        h._error(501, f"fake hub: only model repos, not {payload.get('type')}")
        h.hub.unexpected.append(f"create repo of type {payload.get('type')}")
        return
    repo_id = f"{payload.get('organization') or h.hub.user}/{payload['name']}"
    url = f"{h.hub.url}/{repo_id}"
    if repo_id in h.hub.repos:
        # The real Hub's 409 carries the url too; the client reads it when exist_ok=True.
        msg = "You already created this model repo"
        h._json(409, {"error": msg, "url": url}, {"X-Error-Message": msg})
        return
    private = payload.get("visibility") == "private" or bool(payload.get("private"))
    h.hub.repos[repo_id] = Repo(repo_id, private=private)
    h._json(200, {"url": url, "name": repo_id, "id": uuid.uuid4().hex})


def _validate_yaml(h: _Handler, query: dict) -> None:
    # Used by create_commit's legacy path (no hf_xet); the pipelined upload skips it.
    content = json.loads(h._body())["content"]
    m = re.match(r"^---\n(.*?)\n---", content, re.S)
    try:
        if m:
            yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:
        h._json(400, {"errors": [{"message": str(exc)}], "warnings": []})
        return
    h._json(200, {"errors": [], "warnings": []})


def _preupload(h: _Handler, query: dict, repo: str, rev: str) -> None:
    payload = json.loads(h._body())
    found = h._revision(repo, rev, write=True)
    if found is None:
        return
    r, sha = found
    current = r.commits[sha]
    files = []
    for f in payload["files"]:
        # "regular" for everything: content then comes inline in the commit, so no LFS/Xet storage is needed.
        oid = git_blob_sha1(current[f["path"]]) if f["path"] in current else None
        files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid})
    h._json(200, {"files": files, "commitOid": sha})


def _commit(h: _Handler, query: dict, repo: str, rev: str) -> None:
    body = h._body()
    r = h._repo(repo, write=True)
    if r is None:
        return
    if query.get("create_pr"):
        h.hub.unexpected.append("commit with create_pr")
        h._error(501, "fake hub: pull requests are not implemented")
        return
    branch = unquote(rev)
    if branch not in r.refs:
        h._error(404, f"Revision not found: {branch}", "RevisionNotFound")
        return
    snapshot = dict(r.commits[r.refs[branch]])
    header = None
    for line in body.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key, value = item["key"], item["value"]
        if key == "header":
            header = value
            parent = value.get("parentCommit")
            if parent and parent != r.refs[branch]:
                h._error(412, "A commit has happened since. Please refresh and try again.")
                return
        elif key == "file":
            if value.get("encoding") != "base64":
                h._error(501, f"fake hub: file encoding {value.get('encoding')!r}")
                h.hub.unexpected.append(f"commit file encoding {value.get('encoding')}")
                return
            snapshot[value["path"]] = base64.b64decode(value["content"])
        elif key == "deletedFile":
            if value["path"] not in snapshot:
                h._error(404, "A file with this name doesn't exist", "EntryNotFound")
                return
            del snapshot[value["path"]]
        elif key == "deletedFolder":
            prefix = value["path"].rstrip("/") + "/"
            for p in [p for p in snapshot if p.startswith(prefix)]:
                del snapshot[p]
        else:  # lfsFile: we never answer "lfs" at preupload, so a client sending one is a bug to surface
            h.hub.unexpected.append(f"commit line {key}")
            h._error(501, f"fake hub: commit line {key!r} is not implemented (preupload answers 'regular')")
            return
    if header is None:
        h._error(400, "commit payload without a header line")
        return
    sha = hashlib.sha1(body + r.refs[branch].encode()).hexdigest()
    r.commits[sha] = snapshot
    r.history.append({"sha": sha, "summary": header.get("summary", ""), "parent": r.refs[branch]})
    r.refs[branch] = sha
    h._json(
        200,
        {
            "success": True,
            "commitOid": sha,
            "commitUrl": f"{h.hub.url}/{repo}/commit/{sha}",
            "pullRequestUrl": None,
            "hookOutput": "",
        },
    )


def _create_tag(h: _Handler, query: dict, repo: str, rev: str) -> None:
    payload = json.loads(h._body())
    found = h._revision(repo, rev, write=True)
    if found is None:
        return
    r, sha = found
    tag = payload["tag"]
    if tag in r.tags:
        h._error(409, f"Tag {tag} already exists")
        return
    r.tags[tag] = sha
    h._json(200, {"success": True})


def _refs(h: _Handler, query: dict, repo: str) -> None:
    r = h._repo(repo)
    if r is None:
        return
    branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": sha} for n, sha in r.refs.items()]
    tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": sha} for n, sha in r.tags.items()]
    h._json(200, {"branches": branches, "converts": [], "tags": tags})


def _sibling_info(content: bytes, path: str) -> dict:
    return {"rfilename": path, "size": len(content), "blobId": git_blob_sha1(content)}


def _model_info(h: _Handler, query: dict, repo: str, rev: str = "main") -> None:
    found = h._revision(repo, rev)
    if found is None:
        return
    r, sha = found
    files = r.commits[sha]
    card = files.get("README.md", b"").decode("utf-8", "replace")
    m = re.match(r"^---\n(.*?)\n---", card, re.S)
    card_data = yaml.safe_load(m.group(1)) if m else None
    h._json(
        200,
        {
            "_id": uuid.uuid4().hex[:24],
            "id": repo,
            "modelId": repo,
            "author": repo.split("/")[0],
            "sha": sha,
            "private": r.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": list((card_data or {}).get("tags", [])),
            "library_name": (card_data or {}).get("library_name"),
            "pipeline_tag": (card_data or {}).get("pipeline_tag"),
            "cardData": card_data,
            "createdAt": r.created,
            "lastModified": r.created,
            "siblings": [_sibling_info(c, p) for p, c in sorted(files.items())],
        },
    )


def _tree(h: _Handler, query: dict, repo: str, rev: str, sub: str | None = None) -> None:
    found = h._revision(repo, rev)
    if found is None:
        return
    r, sha = found
    recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
    prefix = (sub.strip("/") + "/") if sub else ""
    files = r.commits[sha]
    if sub and not any(p.startswith(prefix) for p in files):
        h._error(404, f"Entry not found: {sub}", "EntryNotFound", {"X-Repo-Commit": sha})
        return
    entries: dict[str, dict] = {}
    for path, content in sorted(files.items()):
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :].split("/")
        # Folders on the way down are listed once; files only at this level unless recursive.
        for depth in range(1, len(rest)):
            folder = prefix + "/".join(rest[:depth])
            if depth == 1 or recursive:
                entries.setdefault(
                    folder, {"type": "directory", "oid": git_blob_sha1(folder.encode()), "size": 0}
                )
        if len(rest) == 1 or recursive:
            entries[path] = {"type": "file", "oid": git_blob_sha1(content), "size": len(content)}
    h._json(200, [{"path": p, **info} for p, info in entries.items()])


def _resolve(h: _Handler, query: dict, repo: str, rev: str, file: str) -> None:
    found = h._revision(repo, rev)
    if found is None:
        return
    r, sha = found
    files = r.commits[sha]
    if file not in files:
        # The client caches non-existence per commit, keyed on X-Repo-Commit.
        h._error(404, f"Entry not found: {file}", "EntryNotFound", {"X-Repo-Commit": sha})
        return
    content = files[file]
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{git_blob_sha1(content)}"',
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
    }
    rng = h.headers.get("Range")
    if rng and h.command == "GET":
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        if not m:
            h.hub.unexpected.append(f"Range {rng}")
            h._error(501, f"fake hub: Range {rng!r} not implemented")
            return
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else len(content) - 1
        headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
        h._send(206, content[start : end + 1], headers)
        return
    h._send(200, content, headers)


def _agent_harnesses(h: _Handler, query: dict) -> None:
    # huggingface_hub fetches this registry (best-effort, for its user agent); an empty one detects nothing.
    h._json(200, {"standardEnvVars": [], "harnesses": {}})


ROUTES = [
    ("GET", r"/api/agent-harnesses", _agent_harnesses),
    ("POST", r"/api/repos/create", _create_repo),
    ("POST", r"/api/validate-yaml", _validate_yaml),
    ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", _preupload),
    ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", _commit),
    ("POST", rf"/api/models/{_REPO}/tag/(?P<rev>[^/]+)", _create_tag),
    ("GET", rf"/api/models/{_REPO}", _model_info),
    ("GET", rf"/api/models/{_REPO}/refs", _refs),
    ("GET", rf"/api/models/{_REPO}/revision/(?P<rev>[^/]+)", _model_info),
    ("GET", rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.+))?", _tree),
    ("GET", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", _resolve),
]
