package schemas

import (
	"fmt"
	"strings"
)

// Code is one value of a coded column and what it means. Value is the
// value as text (an integer code as its digits).
type Code struct {
	Value string
	Label string
}

// CodeListNames lists the code lists a column of tables.yaml may name in
// `codes`, in sorted order.
func CodeListNames() []string {
	return []string{
		"age_band", "analyses", "arms", "arms_all", "bands", "components", "diagnosis_group",
		"effect_size_types", "ethnicity", "file_statuses", "flow_stages", "gender",
		"instruments", "items", "kinds", "methods", "outcomes", "periods", "rater_roles",
		"scales", "teams", "terms", "trusts", "trusts_pooled", "waves", "yes_no",
	}
}

// CodeList returns the named code list of the study, in the study's order:
// the values a coded column takes and their labels. The lists come from the
// study definition (trusts, teams, arms, waves, periods, demographics,
// fidelity, analysis plan) and the instrument definitions; a few are fixed
// by the program (file statuses, methods). An unknown name is an error.
//
// A coded demographic's list is named after it (age_band, gender, ...: the
// study's demographics); no demographic may take the name of another list.
func (s *Study) CodeList(name string) ([]Code, error) {
	if out, ok := s.programCodeList(name); ok {
		return out, nil
	}
	if codes, ok := s.Demographics[name]; ok {
		return plainCodes(codes), nil
	}
	return nil, fmt.Errorf("unknown code list %q", name)
}

// plainCodes labels each value with itself, underscores as spaces.
func plainCodes(vals []string) []Code {
	out := make([]Code, len(vals))
	for i, v := range vals {
		out[i] = Code{v, strings.ReplaceAll(v, "_", " ")}
	}
	return out
}

// programCodeList is a code list other than the demographics'; ok is false
// for any other name.
func (s *Study) programCodeList(name string) (_ []Code, ok bool) {
	plain := plainCodes
	switch name {
	case "trusts", "trusts_pooled":
		var out []Code
		for _, t := range s.Trusts {
			out = append(out, Code{t.Code, t.Name})
		}
		if name == "trusts_pooled" {
			out = append(out, Code{"ALL", "all trusts pooled"})
		}
		return out, true
	case "teams":
		var out []Code
		for _, t := range s.Teams {
			label := t.Trust
			if tr, ok := s.Trust(t.Trust); ok {
				label = tr.Name
			}
			out = append(out, Code{t.Code, fmt.Sprintf("%s team of %s", t.Arm, label)})
		}
		return out, true
	case "arms":
		out := plain(s.Arms)
		for i := range out {
			if i == 0 {
				out[i].Label += " (tested against the other arms)"
			}
		}
		return out, true
	case "arms_all":
		return append(plain(s.Arms), Code{"ALL", "every arm together"}), true
	case "waves":
		out := plain(s.Waves)
		out[0].Label += " (the first wave)"
		return out, true
	case "periods":
		return plain(s.Periods), true
	case "yes_no":
		return []Code{{"0", "no"}, {"1", "yes"}}, true
	case "instruments":
		var out []Code
		for _, in := range s.Instruments {
			out = append(out, Code{in.Name, in.Title})
		}
		return out, true
	case "items":
		var out []Code
		for _, in := range s.Instruments {
			for _, it := range in.Items {
				out = append(out, Code{it.Name, fmt.Sprintf("%s, item %s (%d to %d)", in.Title, it.Name, it.Min, it.Max)})
			}
		}
		return out, true
	case "scales":
		var names []string
		by := map[string][]string{}
		for _, in := range s.Instruments {
			for _, sc := range in.Scales {
				if by[sc.Name] == nil {
					names = append(names, sc.Name)
				}
				by[sc.Name] = append(by[sc.Name], in.Name)
			}
		}
		out := make([]Code, len(names))
		for i, n := range names {
			out[i] = Code{n, "scale " + n + " of " + strings.Join(by[n], ", ")}
		}
		return out, true
	case "components":
		var out []Code
		for _, c := range s.Fidelity.Components {
			out = append(out, Code{c.Code, c.Name})
		}
		return out, true
	case "rater_roles":
		return plain(s.Fidelity.RaterRoles), true
	case "bands":
		var out []Code
		for _, b := range s.Fidelity.Bands {
			out = append(out, Code{b.Name, fmt.Sprintf("%s: pct at least %g", b.Name, b.MinPct)})
		}
		return out, true
	case "kinds":
		return []Code{{KindParticipants, "participant interviews export"}, {KindFidelity, "fidelity ratings export"}}, true
	case "file_statuses":
		return []Code{
			{"current", "the trust's current export: its rows are in the tables"},
			{"superseded", "replaced by a newer export of the trust"},
			{"held", "waiting for a newer export or cpi accept (participants lost or rows rejected)"},
			{"quarantined", "set aside whole: nothing of it is in the tables"},
			{"duplicate", "the same bytes as a file received before"},
		}, true
	case "analyses":
		labels := map[string]string{
			"primary":            "ANCOVA, cluster-robust CR2 (and CR1)",
			"wild_bootstrap":     "ANCOVA, wild cluster bootstrap-t",
			"mixed":              "ANCOVA with a random intercept for team (REML)",
			"change":             "change from baseline, CR2",
			"weighted":           "propensity-weighted ANCOVA, CR2",
			"fidelity_dose":      "high-fidelity teams against the others, CR2",
			"itt_mi":             "intention to treat by multilevel multiple imputation, CR2 pooled by Rubin's rules",
			"itt_delta":          "delta-adjusted multiple imputation at the tipping delta",
			"cost_effectiveness": "net-benefit regression at each willingness to pay (table cost_effectiveness)",
		}
		out := plain(s.Analysis.Analyses)
		for i := range out {
			if l, ok := labels[out[i].Value]; ok {
				out[i].Label = l
			}
		}
		return out, true
	case "outcomes":
		var out []Code
		for _, o := range s.Analysis.Outcomes {
			label := o
			if inst, scale, ok := strings.Cut(o, "."); ok {
				if in, ok := s.Instrument(inst); ok {
					label = in.Title + ", " + scale
				}
			}
			out = append(out, Code{o, label})
		}
		return out, true
	case "methods":
		return []Code{
			{"cr2", "cluster-robust CR2, Satterthwaite degrees of freedom"},
			{"cr1", "cluster-robust CR1, G-1 degrees of freedom"},
			{"wild_webb", "wild cluster bootstrap-t, Webb weights"},
			{"reml", "linear mixed model, REML"},
			{"cr2_mi", "CR2 on each completed data set, pooled by Rubin's rules, Satterthwaite degrees of freedom of the pooled variance"},
			{"cr2_by_trust", "per-trust arm effects in one model over all trusts, CR2 by team, Satterthwaite df per trust"},
			{"two_stage_bootstrap", "two-stage bootstrap (teams within arm, then participants within team) with the shrinkage correction, percentile intervals"},
		}, true
	case "terms":
		return []Code{
			{"arm_intervention", "the " + s.InterventionArm() + " arm against the others"},
			{"high_fidelity", "teams in the highest fidelity band in the last period against the others"},
			{"icc", "the mixed model's intraclass correlation of team (in effect_size; estimate null)"},
		}, true
	case "effect_size_types":
		return []Code{
			{"hedges_g", "Hedges' g"},
			{"partial_eta2", "partial eta squared"},
			{"icc", "intraclass correlation of team"},
		}, true
	case "flow_stages":
		out := []Code{{"recruited", "recruited"}}
		for _, w := range s.Waves {
			out = append(out, Code{w, "interviewed at " + strings.ReplaceAll(w, "_", " ")})
		}
		lost := "not interviewed at the last wave, not withdrawn"
		if pw := s.PrimaryWave(); pw != s.Waves[len(s.Waves)-1] {
			lost = "not interviewed at the primary wave (" + pw + "), not withdrawn"
		}
		return append(out, Code{"withdrawn", "withdrew"}, Code{"lost", lost},
			Code{"analysed", "in the primary analysis of the primary outcome at the primary wave (complete cases)"},
			Code{"analysed_itt", "in the intention-to-treat analysis (itt_mi) of the primary outcome at the primary wave"}), true
	}
	return nil, false
}
