"""Keep reruns fast once TensorFlow is loaded.

After every script run Streamlit calls ``keras.backend.clear_session()`` and a full garbage
collection. With TensorFlow's large object graph in memory each collection costs most of a second,
so every click waited on it. Freezing the heap once, right after the heavy imports, moves those
long-lived objects out of the collector's sight; later collections only walk what the pages made.
"""
from __future__ import annotations

import gc
import sys

_frozen = False


def freeze_heavy_imports() -> bool:
    """Freeze the heap the first time Keras is found imported; a no-op afterwards."""
    global _frozen
    if _frozen or "keras" not in sys.modules:
        return False
    gc.collect()
    gc.freeze()
    _frozen = True
    return True
