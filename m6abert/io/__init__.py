"""Every file format of the toolkit is read and written here, and nowhere else.

FASTA input, the ``seq<TAB>label`` TSVs (CRLF, as the original wrote them), line-by-line
pretraining corpora, JSON run records, NumPy arrays, figures, motif tables and Hugging Face
checkpoint folders. Writers are atomic: data goes to a temporary name in the target directory and
is renamed into place, so an interrupted run never leaves a half-written file that looks complete.
Readers validate and raise :class:`~m6abert.utils.InputError` naming the file, record and problem.

The functions live in four modules (``files``, ``sequences``, ``checkpoints``, ``results``) and
are all available as ``m6abert.io.<name>``.
"""

from .checkpoints import (  # noqa: F401
    SPECIAL_TOKENS_MAP,
    TOKENIZER_CONFIG,
    Checkpoint,
    _quiet_transformers,
    load_torch_file,
    read_checkpoint,
    save_checkpoint,
    save_model_files,
    write_tokenizer_files,
)
from .files import (  # noqa: F401
    _read_text,
    _umask,
    append_line,
    atomic_dir,
    atomic_path,
    load_npy,
    read_json,
    read_lines,
    save_figure,
    save_npy,
    write_json,
    write_lines,
    write_predictions_tsv,
    write_run_args,
    write_text,
)
from .results import (  # noqa: F401
    SCORE_FILE_STEMS,
    LabelledScores,
    load_score_matrix,
    read_labelled_scores,
    write_motif_outputs,
)
from .sequences import (  # noqa: F401
    ALLOWED_LETTERS,
    CORPUS_CHUNK_BYTES,
    CorpusChunk,
    FastaRecord,
    LabelledTsv,
    iter_corpus_chunks,
    iter_fasta_chunks,
    read_fasta,
    read_tsv,
    tsv_text,
    write_tsv,
)
