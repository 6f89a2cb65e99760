"""The simulated intersection: the world (:mod:`kit.sim.world`), its wiring to gpiozero mock pins
(:mod:`kit.sim.wiring`, :mod:`kit.sim.mcp3008`), the camera (:mod:`kit.sim.camera`) and pictures
(:mod:`kit.sim.render`)."""
