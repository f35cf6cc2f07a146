"""The engine: the stages that run models, between the model core and the service (DESIGN §3, §4).

Owns: the single-process ingest (ingest.py: decode → `encode_batch` → commit, one writer per stream),
the one model step of ingest for every process that runs it (encode.py: `encode_batch`, the generic
pass with the standing questions' relevance and the segment embedder), the one monitor protocol both
ingest paths drive (monitor.py: `SegmentMonitor`, implemented by tempo.agent.monitoring.RuleMonitor),
the work queue's producer (producer.py) and worker (worker.py) on memory's Redis transport, answering
from memory (recall.py: retrieve, compress candidates, plan the allocation, assemble, `RecallPipeline`)
the reference mode that compresses a whole video per question (reference.py: `answer_video`), and
the one result of a question every entry point returns (result.py: `TurnResult`, the one conversion
of an ATA plan into timeline rows), and citations of the times an answer mentions on the segments it
saw (citations.py, with the time vocabulary of questions and answers in timeexpr.py; the said line a
citation relies on in cue_cite.py).

May import `tempo.streaming`, `tempo.models`, `tempo.memory` and the shared top-level modules
(`tempo.errors`, `tempo.inputs`, `tempo.settings`); never agent, tools or service
(tests/test_import_stages.py). Nothing is imported here: the modules load torch with the model.
"""
