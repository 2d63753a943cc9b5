//! Layers, attention variants, optimizers, the parameter store and checkpoint I/O (to come).
