"""Generated Rigify limbs: read as their ORG bones show them, keyed on their FK controls.

A generated Rigify rig shows each limb through its ORG bones: an ORG bone copies its FK control's
transforms, then its IK chain's with an influence driven by the limb's ``IK_FK`` property (0: IK,
1: FK). Reading the FK controls alone would miss a limb animated in IK. So each FK control is read
with its ORG bone's evaluated pose (they share their rest), and the result keys the FK controls with
``IK_FK`` held at FK, so that the keyed controls are what the mesh follows. Found from the rig's own
drivers, not from bone names, so renamed or older generated rigs are handled the same way.
"""

from __future__ import annotations

import re

import numpy as np

FK = 1.0  # Rigify's IK_FK: 0 is IK, 1 is FK (the driver's F-curve maps it to the IK copy's 1 - value)
SWITCH_PROPERTY = "IK_FK"
_INFLUENCE = re.compile(r'^pose\.bones\["((?:[^"\\]|\\.)+)"\]\.constraints\["((?:[^"\\]|\\.)+)"\]\.influence$')
REST_TOLERANCE = 1e-4  # of the rig's size: an FK control and its ORG bone share the rest pose


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def fk_controls(obj) -> dict[str, tuple[str, str]]:
    """FK control -> (the ORG bone it drives, the data path of the limb's IK/FK switch) for every
    limb of armature ``obj`` switched by an ``IK_FK`` property; empty for other rigs."""
    ad = obj.animation_data
    if ad is None:
        return {}
    bones, pose = obj.data.bones, obj.pose.bones
    size = max((b.length for b in bones), default=1.0)
    out = {}
    for driver in ad.drivers:
        match = _INFLUENCE.match(driver.data_path)
        if match is None:
            continue
        switch = [t.data_path for v in driver.driver.variables for t in v.targets
                  if t.id == obj and t.data_path.endswith(f'["{SWITCH_PROPERTY}"]')]
        owner = pose.get(_unescape(match.group(1)))
        driven = owner.constraints.get(_unescape(match.group(2))) if owner is not None else None
        if not switch or driven is None or driven.type != "COPY_TRANSFORMS":
            continue
        for c in owner.constraints:  # the copy the switch blends away from: the FK control's
            if c == driven:
                break
            control = bones.get(c.subtarget) if c.type == "COPY_TRANSFORMS" and c.target == obj else None
            if control is not None and _same_rest(control, owner.bone, size):
                out[control.name] = (owner.name, switch[0])
    return out


def _same_rest(a, b, size: float) -> bool:
    return np.abs(np.array(a.matrix_local) - np.array(b.matrix_local)).max() <= REST_TOLERANCE * size
