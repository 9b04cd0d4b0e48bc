"""Operations on motion: rotations, kinematics, features, contacts, resampling, mirroring."""
