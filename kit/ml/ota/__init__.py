"""Models in the field: deliver a model over the air, verify it, canary it beside the running one, swap, roll back.

    operator:  kit model deploy MODEL --device ID   ─► S3 models/sha256/<digest>.tflite (+ card)
                                                     ─► shadow desired.model = {version, key, sha256, min_kit}
    device:    Updater (its own worker thread)      ─► download ─► verify (sha256, card, signature, load test)
               ─► canary on live frames beside the current model ─► commit on disk ─► swap between two frames
               ─► probation ─► roll back with a reason when the new model does worse

Modules: ``desired`` (what the cloud asks for), ``deploy`` (the operator's side), ``slots`` (the crash-safe
models folder on the device), ``verify`` (is a file a model this device can run), ``canary`` (is it better),
``updater`` (the device's state machine), ``headpatch`` (an on-device adapted head as a complete ``.tflite``).
Importing this package imports none of them; boto3 is imported only by ``deploy`` and the S3 fetcher.
"""

from __future__ import annotations

from kit.exports import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        "DesiredModel": "kit.ml.ota.desired",
        "DeployError": "kit.ml.ota.desired",
        "deploy": "kit.ml.ota.deploy",
        "ModelSlots": "kit.ml.ota.slots",
        "verify_candidate": "kit.ml.ota.verify",
        "Canary": "kit.ml.ota.canary",
        "CanaryPolicy": "kit.ml.ota.canary",
        "Verdict": "kit.ml.ota.canary",
        "Updater": "kit.ml.ota.updater",
    },
)
