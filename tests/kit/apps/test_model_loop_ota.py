"""The app's model loop with over-the-air models: a delivery is canaried and swapped in while it serves."""

import json
import time
from datetime import UTC

import numpy as np

from kit.apps.health import Health
from kit.apps.model_loop import ModelLoop
from kit.ml import shipped_model
from kit.ml.card import load_card
from kit.ml.data import make_dataset
from kit.ml.ota.headpatch import patch_head, shipped_head, write_candidate


def _good_candidate(folder, name="good", card=None):
    """A candidate that differs from the shipped model by a hair: it passes every check and the canary."""
    kernel, bias = shipped_head()
    return write_candidate(
        patch_head(shipped_model().read_bytes(), kernel, bias, kernel, bias + np.float32(1e-3)),
        folder,
        name,
        base_card=card or load_card("intersection"),
    )


def test_model_loop_takes_a_delivered_model_between_frames_and_keeps_it_after_a_restart(tmp_path):
    good = _good_candidate(tmp_path)
    frames = make_dataset(64, seed=3, conditions="day").x
    loop = ModelLoop("intersection", Health(), models_folder=str(tmp_path / "models"))
    loop.load()
    try:
        assert loop.field is not None and loop.field.status()["version"] == "factory"
        assert loop.field.offer_file(good, version="good-1", card=good.with_suffix(".json")) == "queued"
        factory = loop.host
        for k in range(3000):  # bounded: the updater's thread canaries the frames as they come
            rows = loop.look(lambda k=k: frames[k % len(frames)], float(k))
            assert any(name == "model_queue_class" for name, _, _ in rows)
            if loop.host is not factory:
                break
            time.sleep(0.002)
        assert loop.host is not factory, loop.field.status()
        assert loop.field.status()["version"] == "good-1" and "over the air" in loop.health.model
    finally:
        loop.close()
    again = ModelLoop("intersection", Health(), models_folder=str(tmp_path / "models"))
    again.load()
    try:
        assert again.field.status()["version"] == "good-1" and again.host.path.name.endswith(".tflite")
        assert again.health.model == "good-1 (over the air)"
    finally:
        again.close()


def test_without_a_folder_the_loop_is_as_before():
    loop = ModelLoop("intersection", Health())
    loop.load()
    assert loop.field is None and loop.host is not None
    loop.close()


def test_the_running_app_takes_a_deployment_from_its_shadow_and_uploads_its_drift_frames(cloud, tmp_path):
    """One run of the app with the cloud on, during road works that divert the queue into the other lane: it takes
    a deployment from its shadow and reports it, and its drift monitor alarms, so its cloud worker sends the alarming
    windows' frames, labelled by the distance sensor and the PIR at each frame's moment, where
    `kit model retrain --from-s3 DEVICE` reads them."""
    from kit.apps.intersection import AppOptions, IntersectionApp
    from kit.ml.ota.deploy import deploy, reported
    from kit.ml.ota.retrain import download_frames
    from kit.ml.sensors import DISTANCE_MAX_M, queue_class_from_distance
    from kit.store import Store

    good = _good_candidate(tmp_path)
    store = Store(tmp_path / "kit.db")
    device = store.params.get("device_id")
    deploy(good, device, version="good-1")
    options = AppOptions(
        seed=0,
        start="2026-10-15T08:00:00",
        hours=4,
        model="intersection",
        diverted=True,
        sample_period_s=60.0,  # the sensors logged once a minute: this test is about the model, not the readings
        cloud=True,
        mqtt=False,
        poll_s=0.2,
        final_sync_s=2,
        models_folder=str(tmp_path / "models"),
    )
    app = IntersectionApp(store, options)
    try:
        summary = app.run()
    finally:
        app.close()
    assert summary["model"] == "good-1 (over the air)", app.model_loop.field.status()
    seen = reported(device)
    assert seen["reported"]["version"] == "good-1" and seen["reported"]["sha256"] == seen["desired"]["sha256"]
    # the parameter agent left desired.model to the updater: no "model" among its rejected requests
    doc = json.loads(cloud.client("iot-data").get_thing_shadow(thingName=device)["payload"].read())
    assert not (doc["state"]["reported"].get("rejected") or {}).get("model")
    store.close()
    assert summary["drift_alarms"] >= 1 and summary["frames_uploaded"] == 64 * summary["drift_alarms"], summary
    # a request per chunk of at least 64 frames (windows that queued up meanwhile go together), none failed
    assert 1 <= summary["frame_upload_requests"] <= summary["drift_alarms"]
    data, _ = download_frames(device)
    assert len(data) == summary["frames_uploaded"] and data.x.shape[1:] == (64, 64)
    # each label is what the distance sensor said at that frame's moment; its vector travels with the frame
    assert data.sensors is not None and data.sensors.shape == (len(data), 6)
    assert [queue_class_from_distance(float(v[0]) * DISTANCE_MAX_M) for v in data.sensors] == data.queue.tolist()
    assert len(set(data.queue.tolist())) >= 2  # the queue came and went during the works


def test_kit_run_intersection_models_flag_gives_the_app_its_models_folder(tmp_path, capsys):
    from kit.cli import main

    folder = tmp_path / "ota"
    argv = ["run", "intersection", "--hours", "0.02", "--fresh", "--model", "intersection", "--db"]
    assert main([*argv, str(tmp_path / "kit.db"), "--models", str(folder)]) == 0
    assert "Smart intersection" in capsys.readouterr().out
    assert (folder / "blobs").is_dir()  # the app's updater made its models folder there


def test_control_ticks_and_frames_go_on_while_the_candidates_check_is_blocked(tmp_path, monkeypatch):
    """The swap path is off the control thread's critical path: with the delivered candidate's check stuck until the
    control loop has ended, the app runs every tick and scores every frame with its own model."""
    import threading

    from kit.apps.intersection import AppOptions, IntersectionApp
    from kit.apps.model_loop import ModelLoop
    from kit.ml.ota.field import FieldModel
    from kit.ml.ota.worker import CandidateProcess
    from kit.store import Store

    good = _good_candidate(tmp_path)
    entered, release = threading.Event(), threading.Event()
    seen: dict = {}

    class StuckCandidateProcess(CandidateProcess):
        """The candidate's process, stuck in its check (no child started: the block is the point here)."""

        def __init__(self, nice: int = 10) -> None:
            self.broken = False

        def wait_ready(self) -> bool:
            return True

        def verify(self, *args, **kwargs) -> None:
            entered.set()
            release.wait(120)  # the updater's thread waits here, in "verifying"
            seen["released"] = True

        def close(self) -> None:
            pass

    start, close = FieldModel.start, ModelLoop.close

    def start_and_offer(self, *, thread=True):
        out = start(self, thread=thread)
        self.offer_file(good, version="good-1", card=good.with_suffix(".json"))
        assert entered.wait(60), "the updater never reached the candidate's check"
        seen["phase_before"] = self.status()["phase"]
        return out

    def close_after_the_last_tick(self):
        # the control loop has ended: what the updater is doing now, then let it go
        seen["at_end"] = {**self.field.status(), "held": "released" not in seen}
        release.set()
        close(self)

    monkeypatch.setattr("kit.ml.ota.worker.CandidateProcess", StuckCandidateProcess)
    monkeypatch.setattr(FieldModel, "start", start_and_offer)
    monkeypatch.setattr(ModelLoop, "close", close_after_the_last_tick)
    store = Store(tmp_path / "kit.db")
    app = IntersectionApp(
        store,
        AppOptions(
            seed=0, hours=0.25, model="intersection", sample_period_s=60.0, models_folder=str(tmp_path / "models")
        ),
    )
    try:
        summary = app.run()
    finally:
        release.set()
        app.close()
        store.close()
    end = seen["at_end"]
    assert seen["phase_before"] == "verifying" and end["phase"] == "verifying" and end["held"], seen
    assert app.control.elapsed >= 900.0  # every 1 s tick of the quarter hour ran (then the switch-off's)
    assert summary["frames"] >= 90 and end["version"] == "factory"  # a frame every 10 s, the factory model


def test_after_a_model_retrained_on_its_uploads_is_confirmed_the_drift_monitor_knows_those_scenes(cloud, tmp_path):
    """Diverted works alarm; once a model whose card says it was retrained on this device's uploads runs (confirmed),
    frames like the uploaded ones are familiar again, so the camera is trusted for control; a rollback undoes it."""
    import dataclasses

    from kit import Board
    from kit.sim.world import World

    device = "kit-0060"
    card = load_card("intersection")
    card = {**card, "data": {**card["data"], "uploaded": {"device": device, "frames": 64}}}
    retrained = _good_candidate(tmp_path, "retrained", card)
    world = World(seed=0, start="2026-10-15T09:00:00", diverted=True)
    with Board(world) as board:
        loop = ModelLoop(
            "intersection", Health(), board=board, models_folder=str(tmp_path / "models"), thing_name=device
        )
        loop.load()
        loop.collect = True
        loop.field.updater.policy = dataclasses.replace(loop.field.updater.policy, frames=8, probation_frames=8)
        try:

            def window() -> bool:
                for _ in range(64):
                    world.advance(10)
                    loop.look(board.camera.capture, 0.0)
                return loop.drifting

            assert window() and len(loop.uploads) == 64  # the works alarm; the window's frames are kept for S3
            assert (
                loop.field.offer_file(retrained, version="retrained-1", card=retrained.with_suffix(".json")) == "queued"
            )
            for _ in range(3000):  # bounded: the updater's thread canaries the frames as they come
                world.advance(10)
                loop.look(board.camera.capture, 0.0)
                if loop.field.status()["phase"] == "running" and loop.drift is not loop._factory_drift:
                    break
                time.sleep(0.002)
            assert loop.drift is not loop._factory_drift, loop.field.status()
            assert not window() and loop.trusted  # the same works, familiar to the model trained on them
        finally:
            loop.close()
        # a restart (the sample of uploaded frames is kept beside the model): still familiar
        loop = ModelLoop(
            "intersection", Health(), board=board, models_folder=str(tmp_path / "models"), thing_name=device
        )
        loop.load()
        try:
            assert loop.field.status()["version"] == "retrained-1"
            for _ in range(3000):  # the reference is rebuilt on its own thread
                loop.look(board.camera.capture, 0.0)
                if loop.drift is not loop._factory_drift:
                    break
                time.sleep(0.002)
            assert not window() and loop.trusted
            loop.field.updater.rollback("test")
            loop.look(board.camera.capture, 0.0)
            assert loop.drift is loop._factory_drift and window()  # back on the configured model: alarms again
        finally:
            loop.close()


def test_the_fused_default_takes_a_delivered_fused_model_between_frames_and_after_a_restart(tmp_path):
    """The app's default model is fused (camera + sensors, two parts): a fused model's folder is delivered as one
    bundle, canaried on the live frames with the board's sensor vectors, and swapped in."""
    import dataclasses
    import shutil

    from kit import Board
    from kit.ml import MODELS_DIR
    from kit.ml.fusion import FusedHost
    from kit.sim.world import World

    folder = tmp_path / "fusion-f32"  # the shipped model's float32 parts: another file, the same decisions
    folder.mkdir()
    for name in ("card.json", "stem.tflite", "rest.tflite"):
        shutil.copy(MODELS_DIR / "fusion" / name, folder / name)
    world = World(seed=0, start="2026-10-15T09:00:00")
    with Board(world) as board:
        loop = ModelLoop("fusion", Health(), board=board, models_folder=str(tmp_path / "models"))
        loop.load()
        loop.field.updater.policy = dataclasses.replace(loop.field.updater.policy, frames=8, probation_frames=8)
        factory = loop.host
        try:
            assert loop.field.offer_file(folder, version="fusion-f32") == "queued"
            for _ in range(3000):  # bounded: the updater's thread canaries the frames as they come
                world.advance(10)
                loop.look(board.camera.capture, 0.0)
                if loop.field.status()["phase"] == "running":
                    break
                time.sleep(0.002)
            assert loop.host is not factory and isinstance(loop.host, FusedHost), loop.field.status()
            assert not loop.host.stem.quantized and loop.health.model == "fusion-f32 (over the air)"
        finally:
            loop.close()
        again = ModelLoop("fusion", Health(), board=board, models_folder=str(tmp_path / "models"))
        again.load()
        try:
            assert again.field.status()["version"] == "fusion-f32" and again.host.path.suffix == ".zip"
            rows = again.look(board.camera.capture, 0.0)
            assert {"model_queue_class", "model_pedestrian"} <= {name for name, _, _ in rows}
        finally:
            again.close()


def test_with_the_fused_default_a_model_retrained_on_its_uploads_makes_the_works_familiar_to_the_stream_monitor(
    tmp_path,
):
    """The fused default's stream monitor (same light, same hour) alarms at diverted works; once a fused model
    retrained on this device's uploads is confirmed, the uploaded windows (binned by their light reading and hour)
    are normal too, so the model is trusted for control again; a rollback brings the alarm back."""
    import dataclasses
    import shutil

    from kit import Board
    from kit.ml import MODELS_DIR
    from kit.sim.world import World

    device = "kit-0061"
    folder = tmp_path / "fusion-retrained"
    folder.mkdir()
    for name in ("stem.tflite", "rest.tflite"):
        shutil.copy(MODELS_DIR / "fusion" / name, folder / name)
    card = json.loads((MODELS_DIR / "fusion" / "card.json").read_text())
    card["data"] = {"uploaded": {"device": device, "frames": 64}}
    (folder / "card.json").write_text(json.dumps(card))
    world = World(seed=0, start="2026-10-15T09:00:00", diverted=True)
    with Board(world) as board:
        loop = ModelLoop("fusion", Health(), board=board, models_folder=str(tmp_path / "models"), thing_name=device)
        loop.load()
        loop.collect = True
        loop.field.updater.policy = dataclasses.replace(loop.field.updater.policy, frames=8, probation_frames=8)

        def window() -> bool:
            for _ in range(16):
                world.advance(10)
                loop.look(board.camera.capture, world.now.replace(tzinfo=UTC).timestamp())
            return loop.drifting

        try:
            alarms = [window() for _ in range(4)]
            assert all(alarms) and len(loop.uploads) == 64  # the works alarm; the windows' frames are kept for S3
            assert loop.field.offer_file(folder, version="retrained-1") == "queued"
            for _ in range(3000):  # bounded: the updater's thread canaries the frames as they come
                world.advance(10)
                loop.look(board.camera.capture, world.now.replace(tzinfo=UTC).timestamp())
                if loop.field.status()["phase"] == "running" and loop.drift is not loop._factory_drift:
                    break
                time.sleep(0.002)
            assert loop.drift is not loop._factory_drift, loop.field.status()
            assert not window() and loop.trusted  # the same works, in the same light: familiar now
            loop.field.updater.rollback("test")
            loop.look(board.camera.capture, world.now.replace(tzinfo=UTC).timestamp())
            assert loop.drift is loop._factory_drift and window()  # back on the configured model: alarms again
        finally:
            loop.close()
