"""Controllers that decide the lights: :mod:`kit.control.fixed` is the simple fixed-time plan."""
