"""One path layer for every artifact: local paths and `gs://` URLs alike.

Jobs, shards, locks, metrics and reports read and write through these functions, never through
`open`/`os` directly, so a workdir on Cloud Storage behaves as a local one. Remote paths go through
fsspec (gcsfs for `gs://`); local paths through the os module, unchanged. Orbax, grain and tfds reach
the same storage through `etils.epath`, which is told here to use fsspec rather than TensorFlow.

Atomicity differs by backend and is hidden here: a local file is written to a temp file and renamed;
an object is uploaded whole in one request (GCS makes an object visible only once its upload
completes), so in both cases a reader sees the old content, nothing, or the complete new content.
`create_exclusive` is the one-writer primitive for locks: O_EXCL locally, `ifGenerationMatch=0` on GCS.

Libraries that can only write local files (ArrayRecord, SentencePiece, TensorBoard) work in a local
mirror of the remote folder (`local_mirror`) that is copied up with `upload_tree`.
"""
import builtins
import contextlib
import os
import re
import shutil
import time
from typing import IO, Iterator

os.environ.setdefault("EPATH_USE_TF", "false")  # Before etils is imported anywhere: no TensorFlow gfile.

SUPPORTED_SCHEMES = ("gs",)
# Cloud Storage bucket names: 3-63 lowercase letters, digits, '-', '_', '.', starting and ending alphanumeric.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
_CACHE_ENV = "TTC_JAX_CACHE"  # Where local mirrors of remote folders live (default ~/.cache/ttc_jax).


class StorageError(ValueError):
  """A path that cannot be used (unsupported scheme, malformed URL, no credentials); names the path."""


def scheme(path: str) -> str:
  """'gs' for 'gs://b/x', '' for a local path."""
  path = os.fspath(path)
  head, sep, _ = path.partition("://")
  return head.lower() if sep and "/" not in head else ""


def is_remote(path: str) -> bool:
  return bool(scheme(path))


def _use_emulator() -> None:
  """With STORAGE_EMULATOR_HOST set (a local GCS emulator, as in the tests), points every client at it.

  Called before each client is made, not at import: a test may start the emulator after this module loads.
  """
  host = os.environ.get("STORAGE_EMULATOR_HOST")
  if not host:
    return
  # gcsfs asks the storage-control gRPC API for a bucket's layout; emulators lack it (a 60 s timeout each).
  os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
  # TensorStore (Orbax's array writer) has its own GCS client: its endpoint, HTTP/1.1, and a token it does
  # not fetch (the emulator checks none; without one it would look for Google credentials).
  os.environ["TENSORSTORE_GCS_HTTP_URL"] = host
  os.environ["TENSORSTORE_GCS_HTTP_VERSION"] = "1"
  os.environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")


def _filesystem(path: str):
  _use_emulator()
  import fsspec  # Only remote paths need it.
  # No listings cache: other hosts and processes write the same bucket, and a stale listing would
  # hide a shard or lock they wrote.
  return fsspec.filesystem(scheme(path), use_listings_cache=False, skip_instance_cache=False)


def check_path(path: str, what: str = "--workdir", reach: bool = True) -> str:
  """Raises StorageError, naming `what` and `path`, unless the path can be used; returns it unchanged.

  Catches before any work starts what would otherwise fail late or silently: an unsupported scheme,
  a scheme with one slash (`gs:/b`, which os.path would turn into a local folder `gs:`), a URL without
  a valid bucket name, and (`reach`) missing credentials or an unreachable bucket (a listing of it is
  tried). `reach=False` checks the spelling only, e.g. in a launcher that runs the job elsewhere.
  """
  path = os.fspath(path)
  if not is_remote(path):
    head = path.split("/", 1)[0]
    if head.endswith(":") and len(head) > 2:  # 'gs:/b' or 's3:' (a Windows drive 'C:' is two characters).
      raise StorageError(f"{what}={path!r} looks like a URL with a malformed scheme; write {head}//bucket/path")
    return path
  name = scheme(path)
  if name not in SUPPORTED_SCHEMES:
    raise StorageError(f"{what}={path!r}: the scheme {name}:// is not supported (use a local path or "
                       f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)})")
  bucket = path.split("://", 1)[1].split("/", 1)[0]
  if not _BUCKET_NAME.fullmatch(bucket):
    raise StorageError(f"{what}={path!r}: {bucket!r} is not a bucket name (3-63 lowercase letters, digits, "
                       f"'-', '_' or '.'); write {name}://BUCKET/path")
  if not reach:
    return path
  if not os.environ.get("STORAGE_EMULATOR_HOST"):
    _check_credentials(path, what)
  try:
    fs = _filesystem(path)
    fs.ls(bucket, detail=False)
  except ImportError as e:
    raise StorageError(f"{what}={path!r}: {name}:// needs gcsfs ({e}); pip install -c constraints.txt -e .") from None
  except Exception as e:  # pylint: disable=broad-except
    brief = " ".join(str(e).split())[:300]
    raise StorageError(f"{what}={path!r}: bucket {bucket!r} cannot be reached ({type(e).__name__}: {brief}). Check "
                       "the credentials (gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS) "
                       "and that the bucket exists") from None
  return path


def _check_credentials(path: str, what: str) -> None:
  import google.auth  # gcsfs's own dependency; it would otherwise fall back to anonymous access silently.
  try:
    google.auth.default()
  except google.auth.exceptions.DefaultCredentialsError as e:
    brief = " ".join(str(e).split())[:300]
    raise StorageError(f"{what}={path!r}: no Google Cloud credentials ({brief}). Run `gcloud auth "
                       "application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or run on a VM with a "
                       "service account") from None


def join(path: str, *parts: str) -> str:
  return os.path.join(path, *parts)  # posix joining keeps 'gs://b/x' intact.


def isabs(path: str) -> bool:
  """Whether `path` names one place whatever the working directory: an absolute local path or a URL."""
  return is_remote(path) or os.path.isabs(path)


def abspath(path: str) -> str:
  """Local paths made absolute; remote URLs are absolute already (os.path would mangle 'gs://')."""
  return path if is_remote(path) else os.path.abspath(path)


def normpath(path: str) -> str:
  if is_remote(path):
    head, rest = path.split("://", 1)
    return f"{head}://{os.path.normpath(rest).lstrip('/')}"
  return os.path.normpath(path)


def relpath(path: str, start: str) -> str:
  if is_remote(path) or is_remote(start):
    return os.path.relpath(path.split("://", 1)[-1], start.split("://", 1)[-1])
  return os.path.relpath(path, start)


def open(path: str, mode: str = "r", **kwargs) -> IO:  # pylint: disable=redefined-builtin
  """A file object. A remote file in a write mode is uploaded whole on close (so a kill before close
  writes nothing); append modes are refused there: objects cannot be appended to."""
  if not is_remote(path):
    return builtins.open(path, mode, **kwargs)
  if "a" in mode or "+" in mode:
    raise StorageError(f"{path}: object storage cannot append or update in place (mode {mode!r})")
  return _filesystem(path).open(path, mode, **kwargs)


def exists(path: str) -> bool:
  return _filesystem(path).exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  return _filesystem(path).isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
  return _filesystem(path).isfile(path) if is_remote(path) else os.path.isfile(path)


def makedirs(path: str, exist_ok: bool = True) -> None:
  """Local folders are made; object storage has no folders (a prefix exists once an object is under it)."""
  if not is_remote(path):
    os.makedirs(path, exist_ok=exist_ok)


def listdir(path: str) -> list[str]:
  """Names (not paths) of the entries of a folder; FileNotFoundError if there is none."""
  if not is_remote(path):
    return os.listdir(path)
  fs = _filesystem(path)
  if not fs.isdir(path):
    raise FileNotFoundError(path)
  return sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path, detail=False)} - {""})


def size(path: str) -> int:
  return _filesystem(path).size(path) if is_remote(path) else os.path.getsize(path)


def file_versions(root: str) -> dict[str, int | str]:
  """Every file under `root` (path relative to it -> a stamp that changes whenever the file is rewritten:
  the mtime in ns locally, the object's generation remotely); {} if there is no such folder."""
  if not is_remote(root):
    out = {}
    for folder, _, names in os.walk(root):
      for name in names:
        path = os.path.join(folder, name)
        try:
          out[os.path.relpath(path, root)] = os.stat(path).st_mtime_ns
        except FileNotFoundError:  # Removed while walking (a checkpoint being rotated).
          pass
    return out
  fs = _filesystem(root)
  base = root.split("://", 1)[1].rstrip("/")
  return {os.path.relpath(key, base): info.get("generation") or info.get("updated")
          for key, info in fs.find(root, detail=True).items()}


def getmtime(path: str) -> float:
  if not is_remote(path):
    return os.path.getmtime(path)
  modified = _filesystem(path).modified(path)
  return modified.timestamp()


def remove(path: str) -> None:
  if is_remote(path):
    fs = _filesystem(path)
    if not fs.isfile(path):
      raise FileNotFoundError(path)
    fs.rm_file(path)
  else:
    os.remove(path)


def rmtree(path: str) -> None:
  if is_remote(path):
    fs = _filesystem(path)
    if fs.exists(path):
      fs.rm(path, recursive=True)
  else:
    shutil.rmtree(path)


def replace(src: str, dst: str) -> None:
  """Moves a file or folder. Remote moves copy then delete (not atomic): only used to set finished or
  damaged work aside, never to commit new work."""
  if is_remote(src) != is_remote(dst):
    raise StorageError(f"cannot move {src} to {dst}: one is local, the other remote")
  if is_remote(src):
    fs = _filesystem(src)
    fs.mv(src, dst, recursive=fs.isdir(src))
  else:
    os.replace(src, dst)


def copyfile(src: str, dst: str) -> None:
  """Copies one file between any two places (local or remote), atomically at `dst`."""
  with open(src, "rb") as f:
    write_bytes(dst, f.read())


def read_bytes(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def read_text(path: str) -> str:
  return read_bytes(path).decode()


def write_bytes(path: str, data: bytes) -> None:
  """Writes the whole file so that it is never seen half-written: locally a temp file renamed over
  `path`, remotely one upload (an object appears only once complete)."""
  if is_remote(path):
    _filesystem(path).pipe_file(path, data)
    return
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  with builtins.open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode())


def create_exclusive(path: str, data: bytes) -> None:
  """Creates `path` holding `data` only if it does not exist; FileExistsError otherwise.

  One writer wins even across hosts: O_EXCL locally, a GCS upload with `ifGenerationMatch=0`
  (the precondition that the object has no generation yet) remotely.
  """
  if is_remote(path):
    try:
      _filesystem(path).pipe_file(path, data, mode="create")
    except FileExistsError:
      raise
    except OSError as e:  # gcsfs reports a failed precondition (HTTP 412) as an OSError on some paths.
      if "412" in str(e) or "precondition" in str(e).lower():
        raise FileExistsError(path) from None
      raise
    return
  fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  with os.fdopen(fd, "wb") as f:
    f.write(data)


def _cache_root() -> str:
  return os.path.abspath(os.environ.get(_CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "ttc_jax"))


def local_mirror(path: str) -> str:
  """A local folder standing in for `path`: itself if local, else a cache folder named after the URL
  (under $TTC_JAX_CACHE, default ~/.cache/ttc_jax), created, holding whatever was last downloaded."""
  if not is_remote(path):
    return path
  local = os.path.join(_cache_root(), scheme(path), path.split("://", 1)[1].strip("/"))
  os.makedirs(local, exist_ok=True)
  return local


def mirrored_url(local: str) -> str | None:
  """The remote URL whose `local_mirror` is `local`, or None for an ordinary local path."""
  rel = os.path.relpath(os.path.abspath(local), _cache_root())
  name, _, rest = rel.partition(os.sep)
  if rel.startswith("..") or name not in SUPPORTED_SCHEMES or not rest:
    return None
  return f"{name}://{rest}"


def local_copy(path: str) -> str:
  """A local path holding the content of `path` (a file or a folder): itself if local, else a fresh
  download into the cache (`local_mirror`), for libraries that read local files only (SentencePiece)."""
  if not is_remote(path):
    return path
  fs = _filesystem(path)
  if fs.isdir(path):
    local = local_mirror(path)
    download_tree(path, local)
    return local
  local = local_mirror(path.rsplit("/", 1)[0])
  target = os.path.join(local, path.rsplit("/", 1)[1])
  fs.get_file(path, target)
  return target


def download_tree(remote: str, local: str) -> bool:
  """Copies every object under `remote` into `local` (kept paths), skipping files already there with
  the same size; False if there is nothing there."""
  fs = _filesystem(remote)
  if not fs.isdir(remote):
    return False
  base = remote.split("://", 1)[1].rstrip("/")
  for key, info in fs.find(remote, detail=True).items():
    target = os.path.join(local, os.path.relpath(key, base))
    if os.path.isfile(target) and os.path.getsize(target) == info["size"]:
      continue
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fs.get_file(key, target)
  return True


def upload_tree(local: str, remote: str, newer_than: float | None = None) -> int:
  """Copies the files under `local` to `remote` (each one upload, so each appears complete);
  with `newer_than`, only files modified since that time. Returns how many were copied."""
  count = 0
  for folder, _, names in os.walk(local):
    for name in names:
      source = os.path.join(folder, name)
      if newer_than is not None and os.path.getmtime(source) < newer_than:
        continue
      with builtins.open(source, "rb") as f:
        write_bytes(join(remote, os.path.relpath(source, local)), f.read())
      count += 1
  return count


@contextlib.contextmanager
def mirrored(path: str, *, download: bool = True, upload: bool = True) -> Iterator[str]:
  """A local folder for `path` for the with-block: the remote content downloaded first (`download`)
  and what the block wrote uploaded after it (`upload`, on success only). A local path is yielded as is."""
  if not is_remote(path):
    yield path
    return
  local = local_mirror(path)
  if download:
    download_tree(path, local)
  start = time.time()
  yield local
  if upload:
    upload_tree(local, path, newer_than=start)
