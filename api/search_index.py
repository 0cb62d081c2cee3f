"""The Whoosh side of search: the index on disk, its schema, writing, the swap-in replacement,
and per-thread searchers (queries are evaluated by ``api.search_match``). Only the ``search*``
modules import Whoosh.

Layout under ``<data_dir>/search``: ``idx-*`` directories (Whoosh indexes), ``current`` (a
symlink naming the live one, replaced atomically), ``indexer.lock`` (held by whoever writes)
and ``REBUILD`` (a marker asking the indexer to rebuild, left by a reader that found the index
unreadable).
"""

import contextlib
import json
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import whoosh.index
from whoosh import columns
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3Codec, W3PerDocReader, W3PerDocWriter, W3Segment, _lenfield
from whoosh.fields import COLUMN, ID, STORED, TEXT, Schema
from whoosh.util import IDCHARS
from whoosh.util.numeric import byte_to_length

from api import search_match
from api.search_analysis import FIELD_SEPARATOR, Clause, MixedAnalyzer, MixedPositions
from api.search_columns import META_LIST, META_SEP
from api.search_docs import SearchDoc
from api.search_match import Filters, Hit, Outcome

_TEXT = TEXT(analyzer=MixedAnalyzer(), phrase=True)
_TEXT.format = MixedPositions(field_boost=1.0)
SCHEMA = Schema(
    key=ID(unique=True, stored=True),
    text=_TEXT,
    meta=COLUMN(columns.VarBytesColumn()),
    body=STORED(),
)
log = logging.getLogger("fieldbook.search")
# Bump when the schema, the analysis or the stored body changes: indexes of another version are
# rebuilt at start-up.
INDEX_VERSION = "6"  # 6: a hit's time on the stint's clock
VERSION_FILE = "FIELDBOOK_INDEX_VERSION"
BUILD_SEGMENT_DOCS = 20_000  # documents per segment of a full build (see IndexStore.build)
BUILD_LIMIT_MB = 512  # Whoosh's estimate of a writer's posting pool before it spills to disk

__all__ = ["Filters", "Hit", "IndexStore", "IndexUnavailable", "Outcome"]


class IndexUnavailable(Exception):
    """There is no readable index right now (first start, lost or corrupt: being rebuilt)."""


def _meta(doc: SearchDoc) -> bytes:
    values = [
        doc.doc_type,
        str(doc.stint_id),
        doc.kind or "",
        str(doc.author_id) if doc.author_id else "",
        doc.dimension or "",
        doc.day.strftime("%Y%m%d") if doc.day else "0",
        str(int(doc.at.timestamp() * 1000)),
        META_LIST.join(doc.tags),
        META_LIST.join(str(h) for h in doc.hypothesis_ids),
    ]
    return META_SEP.join(values).encode()


def _fields(doc: SearchDoc) -> dict[str, Any]:
    content = FIELD_SEPARATOR.join([*(t for t in doc.texts.values() if t), " ".join(doc.tags)])
    body = {
        "type": doc.doc_type,
        "id": doc.doc_id,
        "stint_id": str(doc.stint_id),
        "texts": dict(doc.texts),
        "kind": doc.kind,
        "tags": list(doc.tags),
        "author_id": str(doc.author_id) if doc.author_id else None,
        "dimension": doc.dimension,
        "day": doc.day.isoformat() if doc.day else None,
        "at": doc.at.isoformat(),
        "fp": doc.fingerprint(),
        "extra": dict(doc.extra),
    }
    return {
        "key": doc.key,
        "text": content,
        "meta": _meta(doc),
        "body": json.dumps(body, ensure_ascii=False, default=str),
    }


# --- writing: Whoosh's codec, with the field lengths of a new segment read once ----------------


class _LengthsReadOnce(W3PerDocReader):  # type: ignore[misc]
    """Writing a segment's postings, Whoosh asks the segment for the document's field length once
    per posting (~70 per note): ~19 % of a full build in a profile. The same answers, read once per
    document."""

    def __init__(self, storage: Any, segment: Any) -> None:
        super().__init__(storage, segment)
        self._lengths: dict[str, list[int | None]] = {}

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> int | None:
        lengths = self._lengths.get(fieldname)
        if lengths is None:
            reader = self._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
            if reader is None:
                return default
            # As Whoosh's own: None for a length byte of 0.
            lengths = [byte_to_length(b) if (b := reader[n]) else None for n in range(self._doccount)]
            self._lengths[fieldname] = lengths
        return lengths[docnum]


class _PerDocWriter(W3PerDocWriter):  # type: ignore[misc]
    """Whoosh's, with stored fields kept uncompressed: zlib on every document's body, again at
    every merge, was ~17 % of the indexer's samples under the capture bench (1.5-2.5 ms a round
    with the GIL given up and taken back each time). Level 0 is still a zlib stream, which
    Whoosh's readers decompress as before. Rounds of 350 notes: 0.269 -> 0.247 ms of CPU a
    document; the index ~14 % larger (postings stay compressed: without, it was ~45 % larger for
    ~5 % less CPU)."""

    def _create_column(self, fieldname: str, column: Any) -> None:
        super()._create_column(fieldname, _STORED_UNCOMPRESSED if fieldname == "_stored" else column)


_STORED_UNCOMPRESSED = columns.PickleColumn(columns.CompressedBytesColumn(level=0))


class _WriteCodec(W3Codec):  # type: ignore[misc]
    """Whoosh's codec for writers. The files written are Whoosh's own, and so is the codec the
    segments keep (pickled into the index's table of contents, read by every searcher)."""

    def per_document_writer(self, storage: Any, segment: Any) -> W3PerDocWriter:
        return _PerDocWriter(self, storage, segment)

    def per_document_reader(self, storage: Any, segment: Any) -> W3PerDocReader:
        return _LengthsReadOnce(storage, segment)

    def new_segment(self, storage: Any, indexname: str) -> W3Segment:
        segment = W3Segment(W3Codec(), indexname)
        # Whoosh names a segment from the global random generator, which others may reseed
        # (hypothesis does for every example): a new segment then took a live one's name and its
        # commit failed. The same 16 characters, from the system's generator.
        segment.segid = "".join(_SEGMENT_NAMES.choice(IDCHARS) for _ in range(16))
        return segment


_SEGMENT_NAMES = random.SystemRandom()


# --- the store ------------------------------------------------------------------------------


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.link = root / "current"
        self.lock_path = root / "indexer.lock"
        self.marker = root / "REBUILD"
        self._local = threading.local()
        root.mkdir(parents=True, exist_ok=True)

    def current_dir(self) -> Path | None:
        try:
            name = os.readlink(self.link)
        except OSError:
            return None
        path = self.root / name
        return path if path.is_dir() else None

    # reading

    def _searcher(self) -> tuple[Path, Any]:
        """This thread's searcher on the live index, refreshed when the index changed."""
        directory = self.current_dir()
        if directory is None:
            raise IndexUnavailable("no index")
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == directory:
            searcher = held[1]
            if not searcher.up_to_date():
                searcher = searcher.refresh()
                self._local.held = (directory, searcher)
            return directory, searcher
        if held is not None:
            with contextlib.suppress(Exception):
                held[1].close()
            self._local.held = None
        searcher = whoosh.index.open_dir(str(directory), schema=SCHEMA).searcher()
        self._local.held = (directory, searcher)
        return directory, searcher

    def search(
        self,
        positive: Sequence[Clause],
        negative: Sequence[Clause],
        filters: Filters,
        *,
        newest: bool,
        offset: int,
        limit: int,
        facets: bool,
        oldest: bool = False,
    ) -> Outcome:
        """Run a query (``newest``/``oldest``: by time instead of relevance). A failure is retried once on a freshly opened searcher (a commit may have
        merged away files a stale searcher still wanted); failing again, the index is declared
        unreadable and the indexer rebuilds it."""
        for attempt in (1, 2):
            directory = self.current_dir()
            if directory is None:
                raise IndexUnavailable("no index")
            try:
                directory, searcher = self._searcher()
                return search_match.run(
                    directory,
                    searcher,
                    positive,
                    negative,
                    filters,
                    newest=newest,
                    oldest=oldest,
                    offset=offset,
                    limit=limit,
                    facets=facets,
                )
            except Exception as exc:
                self._local.held = None
                if attempt == 2:
                    if self.current_dir() != directory:  # swapped away meanwhile: try again later
                        raise IndexUnavailable(str(exc)) from exc
                    if self._readable(directory):
                        raise  # the index is fine: a bug in answering this query, not damage
                    log.exception("search index %s is unreadable: asking for a rebuild", directory)
                    self.request_rebuild()
                    raise IndexUnavailable(str(exc)) from exc
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def openable(self) -> bool:
        """Does the live index open? A cheap look (``/readyz``): its table of contents, no documents."""
        directory = self.current_dir()
        if directory is None:
            return False
        try:
            ix = whoosh.index.open_dir(str(directory), schema=SCHEMA)
            try:
                ix.doc_count_all()
            finally:
                ix.close()
        except Exception:  # whoosh raises its own, OSError and more for a damaged index: all mean "no"
            return False
        return True

    @staticmethod
    def _readable(directory: Path) -> bool:
        """Does a fresh searcher open the index and read its documents' metadata?"""
        try:
            with whoosh.index.open_dir(str(directory), schema=SCHEMA).searcher() as searcher:
                reader = searcher.reader()
                for leaf, _ in reader.leaf_readers() if reader.doc_count_all() else []:
                    column = leaf.column_reader("meta")
                    for i in range(leaf.doc_count_all()):
                        column[i]
                    leaf.stored_fields(0)
        except Exception:
            return False
        return True

    def stored_fingerprints(self) -> dict[str, str]:
        """Every indexed key with the fingerprint of what was indexed (``fieldbook check``)."""
        _directory, searcher = self._searcher()
        out: dict[str, str] = {}
        for _docnum, stored in searcher.reader().iter_docs():
            body = json.loads(stored["body"])
            out[stored["key"]] = body["fp"]
        return out

    # writing: only whoever holds the indexer lock (api.search_indexer)

    def open_for_write(self) -> Any:
        directory = self.current_dir()
        if directory is None:
            raise IndexUnavailable("no index")
        return whoosh.index.open_dir(str(directory), schema=SCHEMA)

    def apply(self, upserts: Sequence[SearchDoc], deletes: Sequence[str]) -> None:
        """Replace the upserted documents and remove the deleted keys, in one commit.

        What ``update_document`` does, but with one searcher for the whole batch: Whoosh's
        ``update_document`` opens a reader over every segment per document, which cost the indexer
        more than writing the documents. Every key is deleted before anything is added (keys are
        unique within a batch), so a record indexed twice (a crash between the index commit and the
        task rows' delete) still ends up once."""
        ix = self.open_for_write()
        writer = ix.writer(timeout=30, codec=_WriteCodec())
        try:
            with writer.searcher() as searcher:
                reader = searcher.reader()
                for key in [*deletes, *(doc.key for doc in upserts)]:
                    if ("key", key) in reader:  # a term lookup; most upserts are new records
                        writer.delete_by_term("key", key, searcher=searcher)
            for doc in upserts:
                writer.add_document(**_fields(doc))
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        ix.close()

    def build(
        self, batches: Iterable[Sequence[SearchDoc]], progress: Callable[[int], None] | None = None
    ) -> Path:
        """A new index directory holding ``batches``; not live until :meth:`swap`.

        Written as segments of :data:`BUILD_SEGMENT_DOCS` documents, each in one writer whose
        posting pool stays in memory: past a few hundred MB Whoosh spills sorted runs to disk and
        merges them, which made a single 50,000-document writer 1.6x slower per document."""
        path = self.root / f"idx-{time.time_ns()}-{os.getpid()}"
        path.mkdir()
        try:
            ix = whoosh.index.create_in(str(path), SCHEMA)
            writer, in_segment = None, 0
            try:
                for batch in batches:
                    for doc in batch:
                        if writer is None:
                            writer, in_segment = ix.writer(limitmb=BUILD_LIMIT_MB, codec=_WriteCodec()), 0
                        writer.add_document(**_fields(doc))
                        in_segment += 1
                        if in_segment >= BUILD_SEGMENT_DOCS:
                            writer.commit(merge=False)
                            writer = None
                    if progress:
                        progress(len(batch))
            except BaseException:
                if writer is not None:
                    writer.cancel()
                raise
            if writer is not None:
                writer.commit(merge=False)
            ix.close()
            (path / VERSION_FILE).write_text(INDEX_VERSION)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return path

    def swap(self, path: Path) -> None:
        """Make ``path`` the live index atomically; readers move to it on their next query."""
        tmp = self.root / f"current.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(path.name, tmp)
        os.replace(tmp, self.link)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            self.marker.unlink()
        for old in self.root.glob("idx-*"):
            if old.name != path.name:
                shutil.rmtree(old, ignore_errors=True)

    def request_rebuild(self) -> None:
        with contextlib.suppress(OSError):
            self.marker.touch()

    def needs_rebuild(self) -> bool:
        directory = self.current_dir()
        if self.marker.exists() or directory is None:
            return True
        try:
            if (directory / VERSION_FILE).read_text().strip() != INDEX_VERSION:
                return True
        except OSError:
            return True
        try:
            ix = self.open_for_write()
            ix.doc_count_all()
            ix.close()
        except Exception:
            return True
        return False
