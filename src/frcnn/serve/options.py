"""How ``frcnn serve`` takes requests (no web framework imported: the CLI reads the
defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeOptions:
    """How the server takes requests: ``max_batch`` images waiting at most ``max_wait_ms``
    run in one call; bodies over ``max_upload_mb`` and images over ``max_megapixels`` (read
    from their header) are refused."""

    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_upload_mb: float = 20.0
    max_megapixels: float = 50.0

    def __post_init__(self) -> None:
        from ..errors import InputError

        if self.max_batch < 1 or self.max_wait_ms < 0:
            raise InputError(
                f"--max-batch must be >= 1 and --max-wait-ms >= 0, got {self.max_batch} and "
                f"{self.max_wait_ms:g}"
            )
        if self.max_upload_mb <= 0 or self.max_megapixels <= 0:
            raise InputError("--max-upload-mb and --max-megapixels must be positive")

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)
