//! MEGA fake (todo)
