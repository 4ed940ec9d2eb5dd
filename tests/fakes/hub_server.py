"""A recorded-call fake of ``huggingface_hub.HfApi`` for ``pipeline.training.publish`` (no network).

Why not a loopback HTTP fake: with ``hf_xet`` installed (it is), ``HfApi.upload_folder`` goes through a
streamed xet upload pipeline whose protocol is far larger than the two calls we make. So the fake sits at
the ``HfApi`` boundary instead, and keeps it honest: every call is bound against the *real* method's
signature (a wrong or missing keyword fails the test), recorded, and the uploaded folder is copied so that
tests can read what would have reached the Hub::

    hub = FakeHfApi(store=tmp_path)
    push_run(settings, "latest", api=hub)
    hub.calls[0][0] == "create_repo"; (hub.uploaded / "README.md").read_text()
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path


class FakeHfApi:
    def __init__(self, *, store: Path, endpoint: str = "https://hub.invalid") -> None:
        self.store = Path(store)  # uploads are copied under it (a test's tmp_path: nothing left behind)
        self.endpoint = endpoint
        self.calls: list[tuple[str, dict]] = []
        self.repos: dict[str, dict] = {}
        self.uploaded: Path | None = None

    def _record(self, name: str, args: tuple, kwargs: dict) -> dict:
        from huggingface_hub import HfApi

        bound = inspect.signature(getattr(HfApi, name)).bind(self, *args, **kwargs)  # TypeError if misused
        params = {k: v for k, v in bound.arguments.items() if k != "self"}
        self.calls.append((name, params))
        return params

    def create_repo(self, *args, **kwargs) -> str:
        params = self._record("create_repo", args, kwargs)
        repo_id = params["repo_id"]
        if repo_id in self.repos and not params.get("exist_ok"):
            raise RuntimeError(f"409 Conflict: {repo_id} exists")
        self.repos.setdefault(repo_id, {"private": params.get("private"), "files": []})
        return f"{self.endpoint}/{repo_id}"

    def upload_folder(self, *args, **kwargs) -> str:
        params = self._record("upload_folder", args, kwargs)
        repo_id = params["repo_id"]
        if repo_id not in self.repos:
            raise RuntimeError(f"404 Repository Not Found: {repo_id}")
        self.uploaded = self.store / f"fake-hub-upload-{len(self.calls)}"
        shutil.copytree(params["folder_path"], self.uploaded, dirs_exist_ok=True)
        self.repos[repo_id]["files"] = sorted(str(p.relative_to(self.uploaded)) for p in self.uploaded.rglob("*")
                                              if p.is_file())
        return f"{self.endpoint}/{repo_id}/commit/0000000"
