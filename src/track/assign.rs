//! Minimum-cost assignment (Hungarian method, shortest augmenting paths)
//! on a fixed-capacity cost matrix, with a cost limit above which pairs are
//! left unassigned (as ByteTrack's `lap.lapjv(..., cost_limit)`).

/// Rows (tracks) and columns (detections) of one matching.
pub const MAX: usize = crate::board::MAX_TRACKS;

/// Scratch space reused across calls, so matching allocates nothing.
pub(crate) struct Assigner {
    cost: Box<[[f32; MAX]; MAX]>,
    u: [f32; MAX + 1],
    v: [f32; MAX + 1],
    p: [usize; MAX + 1],
    way: [usize; MAX + 1],
    minv: [f32; MAX + 1],
    used: [bool; MAX + 1],
}

impl Default for Assigner {
    fn default() -> Self {
        Assigner {
            cost: Box::new([[0.0; MAX]; MAX]),
            u: [0.0; MAX + 1],
            v: [0.0; MAX + 1],
            p: [0; MAX + 1],
            way: [0; MAX + 1],
            minv: [0.0; MAX + 1],
            used: [false; MAX + 1],
        }
    }
}

impl Assigner {
    /// Sets cost[r][c] for an `rows` x `cols` problem.
    pub fn set(&mut self, r: usize, c: usize, cost: f32) {
        self.cost[r][c] = cost;
    }

    /// Solves the `rows` x `cols` problem; calls `matched(r, c)` for every
    /// pair whose cost is at most `limit`.
    pub(crate) fn solve(&mut self, rows: usize, cols: usize, limit: f32, mut matched: impl FnMut(usize, usize)) {
        let rows = rows.min(MAX);
        let cols = cols.min(MAX);
        if rows == 0 || cols == 0 {
            return;
        }
        let n = rows.max(cols);
        // Pad to square; costs above the limit are capped so that pairing them
        // is never better than leaving both unassigned.
        let big = limit + 1.0;
        let c = |a: &Self, r: usize, col: usize| -> f32 {
            if r < rows && col < cols {
                a.cost[r][col].min(big)
            } else {
                big
            }
        };
        self.u[..=n].fill(0.0);
        self.v[..=n].fill(0.0);
        self.p[..=n].fill(0);
        self.way[..=n].fill(0);
        for i in 1..=n {
            self.p[0] = i;
            let mut j0 = 0usize;
            self.minv[..=n].fill(f32::INFINITY);
            self.used[..=n].fill(false);
            loop {
                self.used[j0] = true;
                let i0 = self.p[j0];
                let mut delta = f32::INFINITY;
                let mut j1 = 0usize;
                for j in 1..=n {
                    if !self.used[j] {
                        let cur = c(self, i0 - 1, j - 1) - self.u[i0] - self.v[j];
                        if cur < self.minv[j] {
                            self.minv[j] = cur;
                            self.way[j] = j0;
                        }
                        if self.minv[j] < delta {
                            delta = self.minv[j];
                            j1 = j;
                        }
                    }
                }
                for j in 0..=n {
                    if self.used[j] {
                        self.u[self.p[j]] += delta;
                        self.v[j] -= delta;
                    } else {
                        self.minv[j] -= delta;
                    }
                }
                j0 = j1;
                if self.p[j0] == 0 {
                    break;
                }
            }
            loop {
                let j1 = self.way[j0];
                self.p[j0] = self.p[j1];
                j0 = j1;
                if j0 == 0 {
                    break;
                }
            }
        }
        for j in 1..=n {
            let (r, col) = (self.p[j] - 1, j - 1);
            if r < rows && col < cols && self.cost[r][col] <= limit {
                matched(r, col);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: &[&[f32]], limit: f32) -> Vec<(usize, usize)> {
        let mut a = Assigner::default();
        for (r, row) in m.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                a.set(r, c, v);
            }
        }
        let mut out = vec![];
        a.solve(m.len(), m[0].len(), limit, |r, c| out.push((r, c)));
        out.sort();
        out
    }

    #[test]
    fn finds_the_global_minimum_not_the_greedy_one() {
        // Greedy takes (0,0)=0.1 then (1,1)=0.9; optimum is (0,1)+(1,0)=0.4.
        assert_eq!(run(&[&[0.1, 0.2], &[0.2, 0.9]], 1.0), vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn respects_the_limit_and_rectangular_shapes() {
        assert_eq!(run(&[&[0.9, 0.1, 0.95]], 0.5), vec![(0, 1)]);
        assert_eq!(run(&[&[0.9], &[0.95]], 0.5), vec![]);
        assert_eq!(run(&[&[0.3], &[0.1], &[0.7]], 0.8), vec![(1, 0)]);
    }
}
