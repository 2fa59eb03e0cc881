"""``dreamumm serve``: run the HTTP service with uvicorn until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import uvicorn
from threadpoolctl import threadpool_limits

from dreamumm.config import Settings

logger = logging.getLogger(__name__)


def serve(settings: Settings, config_path: Path | None = None) -> int:
    """Serve until stopped and return the exit code.

    Raises:
        LongViewModelError: if the configured long-view model cannot be loaded or was trained in
            another embedding space.

    With one worker the application runs in this process. With more, uvicorn starts worker
    processes that each load the configuration again, from ``config_path`` (or
    ``DREAMUMM_CONFIG``) with the same ``DREAMUMM__`` overrides, because this process's
    settings object cannot be passed to them.
    """
    serving = settings.serving
    # One BLAS thread per process: requests run side by side, and OpenBLAS's own threads made the
    # long-view model's p90 10-30 times its p50 on a loaded 2-core machine.
    threadpool_limits(limits=1, user_api="blas")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    logger.info("serving on http://%s:%s with %s worker(s); OpenAPI document at /openapi.json",
                serving.host, serving.port, serving.workers)
    # Load and check the model here: a worker that fails at start would make uvicorn restart it forever.
    from ranking import check_model_space, load_configured_long_view_model

    model = load_configured_long_view_model(settings)
    check_model_space(settings, model)
    if serving.workers == 1:
        from service.app import create_app

        uvicorn.run(create_app(settings, model), host=serving.host, port=serving.port, log_level="info",
                    access_log=False)
        return 0
    if config_path is not None:
        os.environ["DREAMUMM_CONFIG"] = str(config_path)
    uvicorn.run("service.app:create_app_from_environment", factory=True, host=serving.host, port=serving.port,
                workers=serving.workers, log_level="info", access_log=False)
    return 0
