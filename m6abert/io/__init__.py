"""Every file format of the toolkit is read and written here, and nowhere else.

FASTA input, the ``seq<TAB>label`` TSVs (CRLF, as the original wrote them), line-by-line
pretraining corpora, JSON run records, NumPy arrays, figures, motif tables, Hugging Face
checkpoint folders and the run folders that hold them. Writers are atomic: data goes to a
temporary name in the target directory and is renamed into place, so an interrupted run never
leaves a half-written file that looks complete. Readers check the format and raise
:class:`~m6abert.utils.InputError` naming the file, record and problem; what the data mean
(k-mer lengths, letters, sequence lengths) is checked by :mod:`m6abert.data`.

The functions live in these modules (``files``, ``sequences``, ``sources``, ``checkpoints``,
``results``, ``rundir``, ``outputs``, ``shards``, ``table``) and are all available as
``m6abert.io.<name>``. ``sources`` is where labelled windows come from: :class:`LabelledSources`
(a pair of :class:`Source`, e.g. :class:`FastaSource`) is what the library reads, never a folder.
"""

from .annotation import Transcript, read_transcripts  # noqa: F401
from .checkpoints import (  # noqa: F401
    SPECIAL_TOKENS_MAP,
    TOKENIZER_CONFIG,
    Checkpoint,
    TrainingState,
    follow_umask,
    load_torch_file,
    quiet_transformers,
    read_checkpoint,
    read_config,
    read_training_state,
    save_checkpoint,
    save_model_files,
    write_tokenizer_files,
)
from .coords import WindowCoords, genome_positions, header_coords, header_text  # noqa: F401
from .files import (  # noqa: F401
    TMP_TAG,
    append_line,
    atomic_dir,
    atomic_path,
    current_umask,
    file_sha256,
    is_leftover,
    json_dumps,
    json_safe,
    load_npy,
    make_dirs,
    read_columns,
    read_json,
    read_lines,
    read_text_file,
    save_figure,
    save_npy,
    write_error,
    write_json,
    write_lines,
    write_predictions_tsv,
    write_run_args,
    write_text,
)
from .genome import (  # noqa: F401
    Genome,
    GenomeSite,
    is_bgzip,
    open_genome,
    read_sites,
    write_windows_fasta,
)
from .outputs import (  # noqa: F401
    OutputReport,
    Writer,
    matches_owned,
    write_output_set,
)
from .results import (  # noqa: F401
    PREDICTION_BED,
    Track,
    bed_rows,
    bed_score,
    load_score_matrix,
    write_bed,
    write_bedgraph,
    write_motif_outputs,
)
from .rundir import (  # noqa: F401
    CHECKPOINT_MARKER,
    CHECKPOINT_RE,
    LOCK_NAME,
    acquire_lock,
    check_unlocked,
    checkpoint_marker,
    clear_run_dir,
    foreign_checkpoints,
    has_outputs,
    is_toolkit_checkpoint,
    list_checkpoints,
    lock_run_dir,
    release_lock,
    resume_point,
    rotate,
)
from .sequences import (  # noqa: F401
    CORPUS_CHUNK_BYTES,
    VARIANT_COLUMNS,
    CorpusChunk,
    FastaRecord,
    LabelledTsv,
    Variant,
    check_unique_ids,
    fasta_lines,
    header_label,
    iter_corpus_chunks,
    iter_fasta_chunks,
    read_fasta,
    read_tsv,
    read_variants,
    tsv_text,
    write_tsv,
)
from .shards import (  # noqa: F401
    SHARD_RECORD,
    Spool,
    concat_tables,
    read_shard_record,
    sorted_table,
    table_bed_rows,
    table_columns,
    table_lines,
)
from .sources import (  # noqa: F401
    COORD_COLUMNS,
    PAPER_FILES,
    RECORD_COLUMNS,
    RECORDS,
    FastaSource,
    LabelledSources,
    RecordRows,
    Source,
    blocks_of,
    blocks_text,
    coord_columns,
    fasta_source,
    part_records,
    placed_coords,
    read_ids_tables,
    records_file,
)
from .table import (  # noqa: F401
    clear_table_dir,
    save_model_folder,
    write_table_tsv,
)
from .tensorboard import log_scalars, summary_writer, summary_writer_class  # noqa: F401
