//! The PGM and MDLM networks, the noise schedule, losses and samplers (to come).
