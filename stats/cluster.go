package stats

import "fmt"

// groupIndex maps arbitrary integer cluster labels to 0..G-1 in order of
// first appearance and returns the codes, G and the size of each group.
func groupIndex(labels []int) (codes []int, g int, sizes []int) {
	seen := make(map[int]int)
	codes = make([]int, len(labels))
	for i, l := range labels {
		c, ok := seen[l]
		if !ok {
			c = len(seen)
			seen[l] = c
			sizes = append(sizes, 0)
		}
		codes[i] = c
		sizes[c]++
	}
	return codes, len(seen), sizes
}

// Codes turns string labels (team names, say) into the integer cluster
// labels the cluster-robust and mixed-model functions take, numbered 0, 1, …
// in order of first appearance, and returns the labels in code order.
func Codes(labels []string) (codes []int, levels []string) {
	seen := make(map[string]int)
	codes = make([]int, len(labels))
	for i, l := range labels {
		c, ok := seen[l]
		if !ok {
			c = len(levels)
			seen[l] = c
			levels = append(levels, l)
		}
		codes[i] = c
	}
	return codes, levels
}

func checkClusters(n int, cluster []int, minG int) (codes []int, g int, err error) {
	if len(cluster) != n {
		return nil, 0, fmt.Errorf("cluster has %d labels for %d rows", len(cluster), n)
	}
	codes, g, _ = groupIndex(cluster)
	if g < minG {
		return nil, 0, fmt.Errorf("%d clusters, need at least %d", g, minG)
	}
	return codes, g, nil
}
